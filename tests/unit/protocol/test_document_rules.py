"""What the API documents say a field takes is what the services take: a client (or a fuzzer) that keeps to the
document is not refused, and one that does not is. Checked for the rules a check function enforces, which the
document would not show by itself: tags, webhook URLs and events, sleep-schedule days, preview images."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.manager import app as manager_app
from services.manager.config import ManagerConfig
from services.protocol.admin import WebhookCreate
from services.protocol.farm import SleepSchedule
from services.protocol.preview import PREVIEW_MAX_BYTES, Preview
from services.protocol.workers import WorkerTagsBody
from services.server.app import create_app
from services.server.config import ServerConfig


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    server = create_app(ServerConfig(data_dir=tmp_path_factory.mktemp("s"))).openapi()["components"]["schemas"]
    manager = manager_app.create_app(
        ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path_factory.mktemp("m"), registration_secret="s")
    ).openapi()["components"]["schemas"]
    return {**manager, **server}


def _takes(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("tag", ["gpu", "studio-a", "os:linux", "x" * 64, "-gpu", "", "a b", "x" * 65, "é"])
def test_a_tag_is_taken_exactly_when_the_document_says_so(schemas: dict[str, Any], tag: str) -> None:
    pattern = schemas["WorkerTagsBody"]["properties"]["tags"]["items"]["pattern"]
    assert _takes(WorkerTagsBody, {"tags": [tag]}) == bool(re.search(pattern, tag))


@pytest.mark.parametrize(
    "url",
    [
        "http://h/x",
        "https://h:8080/a?b#c",
        "http://[::1]/",
        "http://render-07.studio.lan:65535",
        "ftp://h/",
        "http://",
        "http://u@h/",
        "http://h /",
        "http://h:99999/",
        "http://h:0/",
        "https://\u0086x/",
        "http://a\u00adb.example/",
    ],
)
def test_a_webhook_url_the_document_refuses_is_refused(schemas: dict[str, Any], url: str) -> None:
    pattern = schemas["WebhookCreate"]["properties"]["url"]["pattern"]
    taken = _takes(WebhookCreate, {"name": "n", "url": url})
    assert taken == bool(re.search(pattern, url))  # the check takes some the pattern does not (IDNA), not these


def test_the_document_offers_only_the_events_one_may_subscribe_to(schemas: dict[str, Any]) -> None:
    offered = schemas["WebhookCreate"]["properties"]["events"]["items"]["enum"]
    for event in [*offered, "ping"]:
        assert _takes(WebhookCreate, {"name": "n", "url": "http://h/", "events": [event]}) == (event in offered)


@pytest.mark.parametrize("day", [-1, 0, 6, 7])
def test_sleep_days_are_taken_within_the_documented_bounds(schemas: dict[str, Any], day: int) -> None:
    items = schemas["SleepSchedule"]["properties"]["days"]["items"]
    assert _takes(SleepSchedule, {"days": [day]}) == (items["minimum"] <= day <= items["maximum"])


def test_a_preview_image_is_documented_as_the_base64_it_must_be(schemas: dict[str, Any]) -> None:
    data = schemas["Preview"]["properties"]["data"]
    assert data["contentEncoding"] == "base64"
    assert data["maxLength"] == (PREVIEW_MAX_BYTES + 2) // 3 * 4
    body = {"content_type": "image/jpeg", "width": 8, "height": 8, "frame_path": "f.png"}
    for text in ("not base64!", "AAA", "AA=A", "\u00ca^\u0091\u00b7", "AAAA", "AAE=", "AA=="):
        assert _takes(Preview, {**body, "data": text}) == bool(re.search(data["pattern"], text)), text

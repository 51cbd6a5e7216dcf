"""The Manager's worker API takes values of the JSON types its document gives (strict), on its hand-parsed hot
route too: `false` is no task id, `0` no boolean, `"1"` no number; enums are read from their text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.manager import app as manager_app
from services.manager.config import ManagerConfig

API = "/api/v1/worker"
REGISTER = {"registration_secret": "s", "name": "w1", "platform": "linux"}
USE = {"time": "2026-12-05T10:00:00Z", "cpu_percent": 1.0, "memory_percent": 1.0, "memory_used_mb": 1}


@asynccontextmanager
async def manager_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a Manager in this process (its Server out of reach), registration secret `s`."""
    config = ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, registration_secret="s")
    app = manager_app.create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            yield client


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/task", {"running_task_id": False}, "running_task_id"),
        ("/task", {"wait_seconds": "1"}, "wait_seconds"),
        ("/sign-on", {"name": "w1", "platform": "linux", "task_types": ["exec"], "can_restart": 0}, "can_restart"),
        ("/heartbeat", {"status": "awake", "current_task_id": "3"}, "current_task_id"),
        # a type no job can name (as exec's task_type): shown in every list, run by nothing
        ("/sign-on", {"name": "w1", "platform": "linux", "task_types": [""]}, "task_types[0]"),
        ("/sign-on", {"name": "w1", "platform": "linux", "task_types": ["exec", "\u202eevil"]}, "task_types[1]"),
        ("/heartbeat", {"status": "awake", "current_task_id": 3.5}, "current_task_id"),
        # a time is ISO 8601 text: pydantic read a number as seconds since 1970
        ("/heartbeat", {"status": "awake", "utilisation": {**USE, "time": 0}}, "utilisation.time"),
        ("/heartbeat", {"status": "awake", "utilisation": {**USE, "time": "1733400000"}}, "utilisation.time"),
    ],
)
async def test_a_value_of_another_json_type_is_a_422_naming_its_field(
    tmp_path: Path, path: str, body: dict[str, Any], field: str
) -> None:
    async with manager_client(tmp_path) as client:
        r = await client.post(f"{API}/register", json=REGISTER)
        auth = (r.json()["worker_id"], r.json()["secret"])
        sign_on = {"name": "w1", "platform": "linux", "task_types": ["exec"]}
        assert (await client.post(f"{API}/sign-on", json=sign_on, auth=auth)).status_code == 200
        r = await client.post(f"{API}{path}", json=body, auth=auth)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


async def test_many_unknown_fields_are_one_error_in_the_managers_words(tmp_path: Path) -> None:
    """Anyone with the registration secret could send 600,000 unknown keys: an error each, 2 s of the event loop."""
    async with manager_client(tmp_path) as client:
        r = await client.post(f"{API}/register", json={**REGISTER, **{f"k{i}": 1 for i in range(5000)}})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "body"
    assert error["message"].startswith("5000 unknown fields ('k0', 'k1', 'k2', ...); this takes only:"), r.text


@pytest.mark.parametrize("path", ["/register", "/sign-on", "/heartbeat", "/task", "/tasks/1/updates"])
@pytest.mark.parametrize("body", [b"{", b'{"a":1}x', b"\xff"])
async def test_a_body_that_is_not_json_is_a_422_naming_body(tmp_path: Path, path: str, body: bytes) -> None:
    """Found by a hostile-input audit: the Manager named pydantic's byte offset (`[1]`, `[7]`) as the field."""
    async with manager_client(tmp_path) as client:
        r = await client.post(f"{API}/register", json=REGISTER)
        auth = (r.json()["worker_id"], r.json()["secret"])
        headers = {"Content-Type": "application/json"}
        r = await client.post(f"{API}{path}", content=body, headers=headers, auth=auth)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body"], r.text
    assert r.json()["detail"].startswith("body: "), r.text


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-1", "61"])
async def test_may_i_run_names_wait_for_a_wait_that_is_no_number_of_seconds(tmp_path: Path, wait: str) -> None:
    """From a hostile-input audit: `wait=NaN` was refused as "should be ≤ 60"."""
    async with manager_client(tmp_path) as client:
        r = await client.post(f"{API}/register", json=REGISTER)
        auth = (r.json()["worker_id"], r.json()["secret"])
        r = await client.get(f"{API}/tasks/1/may-i-run", params={"wait": wait}, auth=auth)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["wait"], r.text
    if wait.lower() in ("nan", "inf"):
        assert "finite" in r.json()["detail"], r.text

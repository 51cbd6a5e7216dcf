"""`--manager`, `--server` and `--public-url`: an http(s) URL the clients can add the API path to, perhaps behind a
reverse proxy's path prefix, but with no user info (it would sit in unit files and process lists), query or
fragment (either would swallow the API path)."""

from __future__ import annotations

import httpx
import pytest

from services.protocol import API_PREFIX
from services.protocol.cli_args import BadValue, http_url


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("http://127.0.0.1:8471", "http://127.0.0.1:8471"),
        (" https://farm.example/ ", "https://farm.example"),
        ("https://proxy.example/tablao/", "https://proxy.example/tablao"),
        ("http://[::1]:8471", "http://[::1]:8471"),
    ],
)
def test_good_urls_are_taken(given: str, taken: str) -> None:
    assert http_url(given) == taken


def test_a_path_prefix_stays_in_front_of_the_api_path() -> None:
    client = httpx.Client(base_url=http_url("https://proxy.example/tablao/") + API_PREFIX + "/worker")
    assert str(client.build_request("POST", "/task").url) == f"https://proxy.example/tablao{API_PREFIX}/worker/task"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("https://worker:hunter2@m:8471", "must not carry a user name or password"),
        ("https://worker@m:8471", "must not carry a user name or password"),
        ("http://m:8471?x=1", "must not carry a query"),
        ("http://m:8471/?", "must not carry a query"),
        ("http://m:8471/#top", "must not carry a fragment"),
        ("http://m:0", "port 0 is not within 1..65535"),
        ("m:8471", "is not an http:// or https:// URL"),
    ],
)
def test_bad_urls_are_named(given: str, says: str) -> None:
    with pytest.raises(BadValue) as refused:
        http_url(given)
    assert says in str(refused.value)
    assert "hunter2" not in str(refused.value)

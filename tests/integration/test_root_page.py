"""A newcomer opens the address the banner printed in a browser: the Server's root said `{"detail":"Not Found"}`.
Both services' roots say what they are, where the API and its reference are, and where the farm is seen."""

from __future__ import annotations

import httpx
import pytest

from services.protocol import VERSION
from tests.support.manager import ManagerProcess, add_manager
from tests.support.services import ServerProcess


def test_the_roots_say_where_the_api_and_its_reference_are(
    fresh_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m"), tmp_path_factory.mktemp("m") / "m").start()
    try:
        for url, title in ((fresh_server.url, "Tablao Server"), (mgr.url, "Tablao Manager")):
            r = httpx.get(url + "/")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
            assert r.text.startswith(f"{title} {VERSION}: ") and "/api/v1/docs" in r.text
            assert httpx.get(url + "/api/v1/docs").status_code == 200  # and what it points at is there
            schema = httpx.get(url + "/api/v1/openapi.json").json()
            assert "/" not in schema["paths"]  # not an API route: the role and fuzz checks go by the schema
    finally:
        mgr.stop()

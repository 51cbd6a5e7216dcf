"""A method a path does not take is a 405 naming every method it does take, on the Server's nested routers too
(Starlette named only the first matching route's: `OPTIONS /jobs` was told only `GET` is allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.server.config import ServerConfig
from tests.support.inprocess_server import admin_client


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/jobs", "GET, POST"),
        ("PUT", "/api/v1/jobs", "GET, POST"),
        ("DELETE", "/api/v1/users", "GET, POST"),
        ("POST", "/api/v1/health", "GET"),
    ],
)
async def test_a_405_names_every_method_of_the_path(tmp_path: Path, method: str, path: str, allow: str) -> None:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
        r = await client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == allow
    assert r.json()["detail"] == f"{method} is not allowed here; this path takes {allow}"

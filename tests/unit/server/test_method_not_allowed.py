"""A method a path does not take is a 405 naming every method it does take, on the Server's nested routers too
(Starlette named only the first matching route's: `OPTIONS /jobs` was told only `GET` is allowed); and the API
document's bounds are the ones the service applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.protocol.common import ID_MAX
from services.server.config import ServerConfig
from tests.support.inprocess_server import admin_client


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/jobs", "GET, HEAD, POST"),
        ("PUT", "/api/v1/jobs", "GET, HEAD, POST"),
        ("DELETE", "/api/v1/users", "GET, HEAD, POST"),
        ("POST", "/api/v1/health", "GET, HEAD"),
        ("OPTIONS", "/api/v1/jobs/bulk", "POST"),  # as the document has it, though /jobs/{job_id} matches too
        ("GET", "/api/v1/jobs/bulk", "POST"),  # not a 422 for the job id "bulk"
        ("DELETE", "/api/v1/jobs/bulk", "POST"),
        ("GET", "/api/v1/tasks/bulk", "POST"),  # not a 422 for the task id "bulk"
        ("DELETE", "/api/v1/tasks/bulk", "POST"),
        ("PUT", "/api/v1/jobs/5", "DELETE, GET, HEAD"),
        ("PUT", "/api/v1/manager/claim", "POST"),
    ],
)
async def test_a_405_names_every_method_of_the_path(tmp_path: Path, method: str, path: str, allow: str) -> None:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
        r = await client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == allow
    assert r.json()["detail"] == f"{method} is not allowed here; this path takes {allow}"


async def test_a_write_without_credentials_to_a_method_the_path_does_not_take_names_the_methods_too(
    tmp_path: Path,
) -> None:
    """Answered before the body is read (credentials_first.py), it had no `Allow` at all."""
    async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
        r = await client.patch("/api/v1/jobs", headers={"Authorization": ""})
        assert r.status_code == 405, r.text
        assert r.headers["Allow"] == "GET, HEAD, POST"
        r = await client.delete("/api/v1/jobs/bulk", headers={"Authorization": ""})  # a route refuses it: no 401
        assert r.status_code == 405, r.text
        assert r.headers["Allow"] == "POST"


async def test_the_document_gives_64_bit_bounds_exactly(tmp_path: Path) -> None:
    """FastAPI's document model held them as floats: 2^63 - 1 was published as 2^63, which is refused."""
    async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
        text = (await client.get("/api/v1/openapi.json")).text
    assert "9.223372036854776e+18" not in text and str(ID_MAX) in text

"""A job's path naming a path variable no worker of the farm knows is refused, naming the setting
(services/server/store/path_variables.py): `{renderroot}/sh010.blend` was taken and failed on a worker three times.
The Managers say their variables' names with each lease renewal; the Server checks only when every Manager has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.app import create_app
from services.server.config import ServerConfig

ADMIN = {"Authorization": "Bearer " + "a" * 20}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    cfg = ServerConfig(data_dir=tmp_path, admin_token="a" * 20, variables={"projects": {"linux": "/mnt/p"}})
    app = create_app(cfg)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def _manager(client: httpx.AsyncClient, name: str, variables: list[str] | None) -> int:
    made = await client.post("/api/v1/managers", json={"name": name}, headers=ADMIN)
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    if variables is not None:
        pushed = await client.post("/api/v1/manager/updates", json={"seq": 1, "variables": variables}, headers=token)
        assert pushed.status_code == 200, pushed.text
    return int(made.json()["id"])


def _render(blendfile: str, output: str = "{render_root}/out/f_####", **extra: Any) -> dict[str, Any]:
    settings = {"blendfile": blendfile, "output_path": output, "frames": "1-2"}
    return {"name": "shot", "type": "blender-render", "settings": settings, **extra}


async def test_a_misspelt_variable_is_refused_naming_the_setting_and_the_likely_one(client: httpx.AsyncClient) -> None:
    await _manager(client, "a", ["render_root", "shots"])
    await _manager(client, "b", ["render_root", "textures"])
    r = await client.post("/api/v1/jobs", json=_render("{shot}/sh010.blend"), headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "settings.blendfile"
    message = r.json()["errors"][0]["message"]
    assert message.startswith("{shot} is not a path variable the farm's workers know")
    assert "{projects}" in message and "{textures}" in message and "did you mean {shots}?" in message
    r = await client.post("/api/v1/jobs", json=_render("/p/a.blend", "{renderroot}/f_####"), headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settings.output_path"
    assert "did you mean {render_root}?" in r.json()["detail"]
    r = await client.post("/api/v1/jobs", json=_render("/p/a.blend", "{render_root}/f_####"), headers=ADMIN)
    assert r.status_code == 201, r.text
    jobs = (await client.get("/api/v1/jobs", headers=ADMIN)).json()
    assert len(jobs["items"] if isinstance(jobs, dict) else jobs) == 1  # the refused ones stored nothing


@pytest.mark.parametrize(
    "blendfile",
    ["{shots}/sh010.blend", "{textures}/t.blend", "{projects}/p.blend", "{render_root}/r.blend", "/mnt/{x}.blend"],
)
async def test_any_managers_variable_and_the_servers_own_are_taken(client: httpx.AsyncClient, blendfile: str) -> None:
    """`/mnt/{x}.blend` too: a brace that does not start the path is a variable as well, and x is one here."""
    await _manager(client, "a", ["render_root", "shots", "x"])
    await _manager(client, "b", ["render_root", "textures"])
    r = await client.post("/api/v1/jobs", json=_render(blendfile), headers=ADMIN)
    assert r.status_code == 201, r.text


async def test_a_job_for_one_manager_may_name_only_that_managers_variables(client: httpx.AsyncClient) -> None:
    a = await _manager(client, "a", ["render_root", "shots"])
    await _manager(client, "b", ["render_root", "textures"])
    r = await client.post("/api/v1/jobs", json=_render("{textures}/t.blend", manager_id=a), headers=ADMIN)
    assert r.status_code == 422 and "the workers of this job's Manager know" in r.json()["detail"], r.text
    r = await client.post("/api/v1/jobs", json=_render("{shots}/s.blend", manager_id=a), headers=ADMIN)
    assert r.status_code == 201, r.text


async def test_nothing_is_checked_while_a_manager_has_not_said_its_variables(client: httpx.AsyncClient) -> None:
    """An older Manager, or one not renewed since the Server's upgrade: its workers may know any name."""
    r = await client.post("/api/v1/jobs", json=_render("{anything}/x.blend"), headers=ADMIN)
    assert r.status_code == 201, r.text  # no Manager yet
    await _manager(client, "a", ["render_root"])
    await _manager(client, "old", None)
    r = await client.post("/api/v1/jobs", json=_render("{anything}/y.blend"), headers=ADMIN)
    assert r.status_code == 201, r.text


async def test_exec_fills_its_own_placeholders_in_its_working_folder(client: httpx.AsyncClient) -> None:
    await _manager(client, "a", ["render_root"])
    body = {"name": "e", "type": "exec", "settings": {"command": ["true"], "cwd": "{render_root}/f{frame}"}}
    assert (await client.post("/api/v1/jobs", json=body, headers=ADMIN)).status_code == 201
    body["settings"]["cwd"] = "{renderroot}/f{frame}"  # type: ignore[index]
    r = await client.post("/api/v1/jobs", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settings.cwd", r.text


@pytest.mark.parametrize("names", [["a b"], ["{x}"], ["x" * 101], ["n"] * 501])
async def test_a_manager_cannot_store_names_no_path_could_use(client: httpx.AsyncClient, names: list[str]) -> None:
    made = await client.post("/api/v1/managers", json={"name": "m"}, headers=ADMIN)
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    r = await client.post("/api/v1/manager/updates", json={"seq": 1, "variables": names}, headers=token)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("variables"), r.text
    managers = (await client.get("/api/v1/managers", headers=ADMIN)).json()
    assert [m["variables"] for m in managers] == [None]

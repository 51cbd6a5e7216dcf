"""The farm policy's `[priority]` caps at submission (services/server/api/jobs.py): a cap below the default
priority (50) must not refuse every submission that gives none (the desktop app's form, `tablao submit`, the
demo, OpenJD templates), found by the review of the change that added the caps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.protocol.states import Role
from services.server.config import ServerConfig
from services.server.policy import FarmPolicy
from tests.support.inprocess_server import admin_client

API = "/api/v1"
JOB: dict[str, Any] = {
    "name": "r",
    "type": "blender-render",
    "settings": {"blendfile": "/p/a.blend", "output_path": "/r/f_####", "frames": "1"},
}


async def test_a_cap_below_the_default_is_the_priority_of_a_job_that_gives_none(tmp_path: Path) -> None:
    cfg = ServerConfig(data_dir=tmp_path, policy=FarmPolicy(priority_caps={Role.ARTIST: 40}))
    async with admin_client(cfg) as admin:
        assert (await admin.post(f"{API}/users", json={"name": "ana", "role": "artist"})).status_code == 201
        token = (await admin.post(f"{API}/tokens", json={"user": "ana"})).json()["token"]
        ana = {"Authorization": f"Bearer {token}"}
        r = await admin.post(f"{API}/jobs", json=JOB, headers=ana)
        assert r.status_code == 201 and r.json()["priority"] == 40, r.text
        r = await admin.post(f"{API}/jobs", json=JOB | {"priority": 50}, headers=ana)  # given: refused
        assert r.status_code == 403 and r.json()["errors"][0]["field"] == "priority", r.text
        r = await admin.post(f"{API}/jobs", json=JOB)  # an admin has no cap: the default
        assert r.status_code == 201 and r.json()["priority"] == 50, r.text

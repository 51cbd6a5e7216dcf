"""The farm policy told to the caller, so a client offers only what the Server will accept: each job type says
whether the caller may submit it and which roles may (`/job-types`), and `/me` says the caller's priority cap.
Found by an audit of the desktop app, which offered every type and priority 0–100 and met the Server's 403."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.protocol.states import Role
from services.server.config import ServerConfig
from services.server.policy import FarmPolicy
from tests.support.inprocess_server import admin_client

API = "/api/v1"


async def _as(admin: httpx.AsyncClient, name: str, role: str) -> dict[str, str]:
    assert (await admin.post(f"{API}/users", json={"name": name, "role": role})).status_code == 201
    token = (await admin.post(f"{API}/tokens", json={"user": name})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def _types(admin: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    r = await admin.get(f"{API}/job-types", headers=headers)
    assert r.status_code == 200, r.text
    return {t["name"]: t for t in r.json()}


async def test_job_types_say_whether_the_caller_may_submit_them_and_who_may(tmp_path: Path) -> None:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as admin:  # the default policy
        ana = await _as(admin, "ana", "artist")
        seen = await _types(admin, ana)
        assert seen["exec"]["may_submit"] is False
        assert seen["exec"]["submit_roles"] == ["admin", "wrangler"]
        assert seen["blender-render"]["may_submit"] is True
        assert seen["blender-render"]["submit_roles"] == ["admin", "artist", "wrangler"]
        one = (await admin.get(f"{API}/job-types/exec", headers=ana)).json()  # one type: the same answer
        assert one["may_submit"] is False and one["submit_roles"] == ["admin", "wrangler"]
        assert all(t["may_submit"] for t in (await _types(admin)).values())  # an admin may submit every type
        # what the list says is what a submission meets
        r = await admin.post(f"{API}/jobs", headers=ana,
                             json={"name": "x", "type": "exec", "settings": {"command": ["true"]}})  # fmt: skip
        assert r.status_code == 403, r.text


async def test_a_job_type_the_policy_names_follows_the_policy(tmp_path: Path) -> None:
    policy = FarmPolicy.from_dict({"submit": {"job_types": {"exec": ["admin"]}, "program": ["wrangler", "admin"]}})
    async with admin_client(ServerConfig(data_dir=tmp_path, policy=policy)) as admin:
        carmen = await _as(admin, "carmen", "wrangler")
        seen = await _types(admin, carmen)
        assert seen["exec"]["may_submit"] is False and seen["exec"]["submit_roles"] == ["admin"]
        assert seen["blender-render"]["may_submit"] is True
        ana = await _as(admin, "ana", "artist")
        assert not any(t["may_submit"] for t in (await _types(admin, ana)).values())


async def test_me_says_the_callers_priority_cap(tmp_path: Path) -> None:
    cfg = ServerConfig(data_dir=tmp_path, policy=FarmPolicy(priority_caps={Role.ARTIST: 60}))
    async with admin_client(cfg) as admin:
        ana = await _as(admin, "ana", "artist")
        me = (await admin.get(f"{API}/me", headers=ana)).json()
        assert me == {"name": "ana", "role": "artist", "priority_cap": 60}
        assert (await admin.get(f"{API}/me")).json()["priority_cap"] is None  # no cap for admins on this farm

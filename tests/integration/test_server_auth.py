"""Users, roles and tokens: artists manage their own jobs, wranglers all jobs and workers, admins everything."""

from __future__ import annotations

import stat

import httpx
import pytest

from tests.integration.test_server_jobs import render_job
from tests.support.services import ServerProcess

API = "/api/v1"


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    out = {"admin": server.admin_token}
    with httpx.Client(base_url=server.url + API, headers=server.headers()) as c:
        for name, role in (("ana", "artist"), ("bo", "artist"), ("wes", "wrangler")):
            r = c.post("/users", json={"name": name, "role": role, "password": f"{name}-password"})
            assert r.status_code == 201, r.text
            out[name] = c.post("/tokens", json={"user": name, "name": "test"}).json()["token"]
    return out


def as_user(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, headers={"Authorization": f"Bearer {token}"})


def test_every_route_but_health_needs_a_token(server: ServerProcess) -> None:
    doc = httpx.get(server.url + API + "/openapi.json").json()
    for path, methods in doc["paths"].items():
        for method in methods:
            if path in ("/api/v1/health", "/api/v1/auth/login", "/api/v1/openapi.json"):
                continue
            url = server.url + path.replace("{job_id}", "1").replace("{task_id}", "1").replace(
                "{worker_id}", "w"
            ).replace("{token_id}", "1").replace("{name}", "exec")
            if path.startswith("/api/v1/manager/"):
                continue  # the Manager link has its own tokens (tested with the Manager)
            r = httpx.request(method.upper(), url, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            r = httpx.request(method.upper(), url, json={}, headers={"Authorization": "Bearer tbl_wrong"})
            assert r.status_code == 401, (method, path, r.status_code)


def test_admin_token_file_is_private(server: ServerProcess) -> None:
    mode = stat.S_IMODE((server.data_dir / "admin.token").stat().st_mode)
    assert mode == 0o600


def test_artists_manage_only_their_own_jobs(server: ServerProcess, tokens: dict[str, str]) -> None:
    with as_user(server, tokens["ana"]) as ana, as_user(server, tokens["bo"]) as bo:
        job = ana.post("/jobs", json=render_job(name="ana's")).json()
        assert job["submitter"] == "ana"
        r = bo.post(f"/jobs/{job['id']}/status", json={"action": "pause"})
        assert r.status_code == 403 and "belongs to ana" in r.json()["detail"]
        assert bo.get(f"/jobs/{job['id']}").status_code == 200  # everyone may look
        assert ana.post(f"/jobs/{job['id']}/status", json={"action": "pause"}).status_code == 200
        assert bo.post("/users", json={"name": "eve", "role": "admin"}).status_code == 403
        assert bo.post("/managers", json={"name": "m"}).status_code == 403
        assert bo.post("/workers/x/status-request", json={"status": "asleep"}).status_code == 403


def test_wranglers_manage_all_jobs_but_not_users(server: ServerProcess, tokens: dict[str, str]) -> None:
    with as_user(server, tokens["ana"]) as ana, as_user(server, tokens["wes"]) as wes:
        job = ana.post("/jobs", json=render_job(name="for wes")).json()
        assert wes.post(f"/jobs/{job['id']}/status", json={"action": "cancel"}).status_code == 200
        assert wes.post("/users", json={"name": "eve", "role": "admin"}).status_code == 403
        assert wes.get("/tokens").status_code == 403
        r = wes.post("/workers/unknown/status-request", json={"status": "asleep"})
        assert r.status_code == 404  # allowed, but there is no such worker


def test_login_and_revoke(server: ServerProcess, tokens: dict[str, str]) -> None:
    r = httpx.post(server.url + API + "/auth/login", json={"username": "wes", "password": "nope-nope"})
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "password"
    r = httpx.post(server.url + API + "/auth/login", json={"username": "wes", "password": "wes-password"})
    assert r.status_code == 200 and r.json()["role"] == "wrangler"
    token, token_id = r.json()["token"], r.json()["id"]
    with as_user(server, token) as wes:
        assert wes.get("/jobs").status_code == 200
    with as_user(server, tokens["admin"]) as admin:
        assert admin.delete(f"/tokens/{token_id}").status_code == 204
    with as_user(server, token) as wes:
        assert wes.get("/jobs").status_code == 401


def test_admin_creates_manager_and_gets_token_once(server: ServerProcess, tokens: dict[str, str]) -> None:
    with as_user(server, tokens["admin"]) as admin:
        r = admin.post("/managers", json={"name": "room-b"})
        assert r.status_code == 201 and r.json()["token"].startswith("tbl_")
        assert r.json()["status"] == "never-seen"
        listed = admin.get("/managers").json()
        assert "token" not in listed[0]
        assert admin.post("/managers", json={"name": "room-b"}).status_code == 409
        r = admin.post("/managers", json={"name": "bad name!"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"


def test_me_names_the_token_owner_and_role(server: ServerProcess, tokens: dict[str, str]) -> None:
    with as_user(server, tokens["ana"]) as ana, as_user(server, tokens["wes"]) as wes:
        # no [priority] in the farm's policy: no cap
        assert ana.get("/me").json() == {"name": "ana", "role": "artist", "priority_cap": None}
        assert wes.get("/me").json() == {"name": "wes", "role": "wrangler", "priority_cap": None}
        # a Server started without --variables publishes an empty table rather than guessing
        assert ana.get("/farm/variables").json() == {"variables": {}}
    assert httpx.get(server.url + API + "/me").status_code == 401

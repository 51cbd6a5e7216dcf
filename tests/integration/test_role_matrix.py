"""The role matrix: every route of the Server and the Manager × {no token, wrong token, artist, other artist,
wrangler, admin, Manager token, worker credentials}, each with the status it must answer.

The routes come from the apps' own route tables: a route added without a row here fails the test."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.manager.app import create_app as create_manager_app
from services.manager.config import ManagerConfig
from services.server.app import create_app as create_server_app
from services.server.config import ServerConfig
from tests.integration.test_server_jobs import render_job
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(300)

WHO = ("none", "wrong", "artist", "other", "wrangler", "admin", "manager", "worker")
_names = itertools.count()


@dataclass
class Farm:
    server: ServerProcess
    manager: ManagerProcess
    tokens: dict[str, str]  # artist, other, wrangler, admin, manager
    secret: str  # the Manager's worker registration secret
    # one client for the ~900 calls: httpx's module-level functions make a client, and with it an SSL context
    # (~25 ms of CPU loading the CA bundle), per call
    http: httpx.Client

    def headers(self, who: str) -> dict[str, str]:
        if who == "none":
            return {}
        if who == "wrong":
            return {"Authorization": "Bearer tbl_not-a-token-of-this-farm"}
        if who == "worker":
            w = ScriptedWorker(self.manager.url, f"matrix-{next(_names)}").register(self.secret)
            w.sign_on()
            w.close()
            basic = base64.b64encode(f"{w.worker_id}:{w.secret}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def job(self, canceled: bool = False) -> dict[str, Any]:
        """A fresh job of the artist's."""
        h = self.headers("artist")
        r = self.http.post(f"{self.server.url}{API}/jobs", json=render_job(f"m{next(_names)}"), headers=h)
        assert r.status_code == 201, r.text
        job: dict[str, Any] = r.json()
        if canceled:
            url = f"{self.server.url}{API}/jobs/{job['id']}/status"
            assert self.http.post(url, json={"action": "cancel"}, headers=h).status_code == 200
        return job

    def task_id(self) -> int:
        job = self.job()
        r = self.http.get(f"{self.server.url}{API}/jobs/{job['id']}/tasks", headers=self.headers("artist"))
        return int(r.json()["items"][0]["id"])

    def fresh_id(self, kind: str) -> int:
        """A new user, Manager or webhook, made by the admin, for a call that changes or removes it."""
        n = next(_names)
        body = {
            "users": {"name": f"u-{n}", "role": "artist"},
            "managers": {"name": f"gone-{n}"},
            "webhooks": {"name": f"hook-{n}", "url": "http://127.0.0.1:9/hook"},
        }[kind]
        r = self.http.post(f"{self.server.url}{API}/{kind}", json=body, headers=self.headers("admin"))
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def token_id(self) -> int:
        r = self.http.post(f"{self.server.url}{API}/tokens", json={"user": "ana"}, headers=self.headers("admin"))
        return int(r.json()["id"])


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    env = {"TABLAO_AUTH_FREE_FAILURES": "1000000"}  # wrong credentials by the hundred: no back-off here
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None, env=env).start()
    manager_token = add_manager(server, "m1")
    mgr = ManagerProcess(server.url, manager_token, tmp_path_factory.mktemp("mgr") / "manager", env=env).start()
    tokens = {"admin": server.admin_token, "manager": manager_token}
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        for who, name, role in (
            ("artist", "ana", "artist"),
            ("other", "bo", "artist"),
            ("wrangler", "wes", "wrangler"),
        ):
            assert c.post("/users", json={"name": name, "role": role, "password": f"{name}-password"}).is_success
            tokens[who] = c.post("/tokens", json={"user": name}).json()["token"]
    with httpx.Client(timeout=30) as http:
        yield Farm(server, mgr, tokens, mgr.registration_secret, http)
    mgr.stop()
    server.stop()


# A call: (farm) -> (path with its ids filled in, JSON body or None)
Call = Callable[[Farm], tuple[str, Any]]
PUBLIC = dict.fromkeys(WHO, 200)
ANY_USER = {"none": 401, "wrong": 401, "manager": 401, "worker": 401}


def users(ok: int, artist: int | None = None, other: int | None = None, wrangler: int | None = None) -> dict[str, int]:
    """Any user token may; artists (the job's owner, another artist) and wranglers may differ from admins."""
    a = ok if artist is None else artist
    return {**ANY_USER, "artist": a, "other": a if other is None else other, "wrangler": wrangler or ok, "admin": ok}


def only_admin(ok: int) -> dict[str, int]:
    return users(ok, artist=403, wrangler=403)


def only_manager(ok: int) -> dict[str, int]:
    return {**dict.fromkeys(WHO, 401), "manager": ok}


def only_worker(ok: int) -> dict[str, int]:
    return {**dict.fromkeys(WHO, 401), "worker": ok}


def fixed(path: str, body: Any = None) -> Call:
    return lambda _farm: (path, body)


def on_job(template: str, body: Any = None, canceled: bool = False) -> Call:
    return lambda farm: (template.format(id=farm.job(canceled)["id"]), body)


def on_task(template: str, body: Any = None) -> Call:
    return lambda farm: (template.format(id=farm.task_id()), body)


def unique(kind: str) -> Call:
    def call(farm: Farm) -> tuple[str, Any]:
        n = next(_names)
        if kind == "managers":
            return "/managers", {"name": f"mgr-{n}"}
        if kind == "users":
            return "/users", {"name": f"user-{n}", "role": "artist"}
        if kind == "webhooks":
            return "/webhooks", {"name": f"chat-{n}", "url": "http://127.0.0.1:9/hook", "events": ["job-failed"]}
        return "/tokens", {"user": "ana", "name": f"t{n}"}

    return call


def _bulk(farm: Farm) -> tuple[str, Any]:
    return "/jobs/bulk", {"ids": [farm.job()["id"]], "priority": 60}


def _task_bulk(farm: Farm) -> tuple[str, Any]:
    return "/tasks/bulk", {"ids": [farm.task_id()], "action": "cancel"}


def docs_folder() -> dict[str, tuple[Call, dict[str, int]]]:
    """The API reference's folder itself is no file: a 404 in the errors' shape (it was an empty 307 to a
    redirect that then refused the method); a write needs a user's token first, as on every route."""
    return {
        f"{method} /api/v1/docs-assets": (
            fixed("/docs-assets"),
            dict.fromkeys(WHO, 404) if method == "OPTIONS" else users(404),
        )
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    }


SERVER: dict[str, tuple[Call, dict[str, int]]] = {
    **docs_folder(),
    "GET /api/v1/openapi.json": (fixed("/openapi.json"), PUBLIC),
    "GET /": (fixed("/"), PUBLIC),
    "GET /api/v1/docs": (fixed("/docs"), PUBLIC),
    "GET /api/v1/docs-assets": (fixed("/docs-assets/swagger-ui.css"), PUBLIC),
    "GET /api/v1/health": (fixed("/health"), PUBLIC),
    "POST /api/v1/auth/login": (fixed("/auth/login", {"username": "ana", "password": "ana-password"}), PUBLIC),
    "GET /api/v1/farm/status": (fixed("/farm/status"), users(200)),
    "GET /api/v1/farm/variables": (fixed("/farm/variables"), users(200)),
    "GET /api/v1/me": (fixed("/me"), users(200)),
    "GET /api/v1/job-types": (fixed("/job-types"), users(200)),
    "GET /api/v1/job-types/{name}": (fixed("/job-types/blender-render"), users(200)),
    "GET /api/v1/workers": (fixed("/workers"), users(200)),
    # no such worker: the role is checked first, so artists learn nothing about which workers exist
    "POST /api/v1/workers/{worker_id}/status-request": (
        fixed("/workers/no-such-worker/status-request", {"status": "asleep"}),
        users(404, artist=403),
    ),
    # a worker's tags and forgetting it: wranglers and admins (the role first); its history: anyone
    "PUT /api/v1/workers/{worker_id}/tags": (
        fixed("/workers/no-such-worker/tags", {"tags": ["gpu"]}),
        users(404, artist=403),
    ),
    "DELETE /api/v1/workers/{worker_id}": (fixed("/workers/no-such-worker"), users(404, artist=403)),
    "GET /api/v1/workers/{worker_id}/utilisation": (fixed("/workers/no-such-worker/utilisation"), users(404)),
    "GET /api/v1/managers": (fixed("/managers"), users(200)),
    "POST /api/v1/managers": (unique("managers"), only_admin(201)),
    "GET /api/v1/users": (fixed("/users"), only_admin(200)),
    "POST /api/v1/users": (unique("users"), only_admin(201)),
    "GET /api/v1/tokens": (fixed("/tokens"), only_admin(200)),
    "POST /api/v1/tokens": (unique("tokens"), only_admin(201)),
    "DELETE /api/v1/tokens/{token_id}": (lambda farm: (f"/tokens/{farm.token_id()}", None), only_admin(204)),
    "PATCH /api/v1/users/{user_id}": (
        lambda farm: (f"/users/{farm.fresh_id('users')}", {"role": "wrangler"}),
        only_admin(200),
    ),
    "DELETE /api/v1/managers/{manager_id}": (
        lambda farm: (f"/managers/{farm.fresh_id('managers')}", None),
        only_admin(204),
    ),
    "GET /api/v1/webhooks": (fixed("/webhooks"), only_admin(200)),
    "POST /api/v1/webhooks": (unique("webhooks"), only_admin(201)),
    "PATCH /api/v1/webhooks/{webhook_id}": (
        lambda farm: (f"/webhooks/{farm.fresh_id('webhooks')}", {"enabled": False}),
        only_admin(200),
    ),
    "DELETE /api/v1/webhooks/{webhook_id}": (
        lambda farm: (f"/webhooks/{farm.fresh_id('webhooks')}", None),
        only_admin(204),
    ),
    "POST /api/v1/webhooks/{webhook_id}/test": (
        lambda farm: (f"/webhooks/{farm.fresh_id('webhooks')}/test", None),
        only_admin(202),
    ),
    "POST /api/v1/jobs": (lambda _farm: ("/jobs", render_job(f"s{next(_names)}")), users(201)),
    "GET /api/v1/jobs": (fixed("/jobs"), users(200)),
    # per-job refusals of bulk changes are reported per item: the request itself succeeds
    "POST /api/v1/jobs/bulk": (_bulk, users(200)),
    # only to refuse the method for all (not a 422 for the job id "bulk"), before any credentials are looked at
    "GET /api/v1/jobs/bulk": (fixed("/jobs/bulk"), dict.fromkeys(WHO, 405)),
    "DELETE /api/v1/jobs/bulk": (fixed("/jobs/bulk"), dict.fromkeys(WHO, 405)),
    "GET /api/v1/jobs/{job_id}": (on_job("/jobs/{id}"), users(200)),
    "DELETE /api/v1/jobs/{job_id}": (on_job("/jobs/{id}", canceled=True), users(204, other=403)),
    "POST /api/v1/jobs/{job_id}/status": (on_job("/jobs/{id}/status", {"action": "pause"}), users(200, other=403)),
    "POST /api/v1/jobs/{job_id}/priority": (on_job("/jobs/{id}/priority", {"priority": 70}), users(200, other=403)),
    "GET /api/v1/jobs/{job_id}/tasks": (on_job("/jobs/{id}/tasks"), users(200)),
    "GET /api/v1/jobs/{job_id}/log": (on_job("/jobs/{id}/log"), users(200)),
    # previews: any user reads them (as the jobs they show); a fresh job or unknown worker has none yet
    "GET /api/v1/jobs/{job_id}/last-rendered": (on_job("/jobs/{id}/last-rendered"), users(404)),
    "GET /api/v1/jobs/{job_id}/last-rendered/info": (on_job("/jobs/{id}/last-rendered/info"), users(404)),
    "GET /api/v1/workers/{worker_id}/last-rendered": (fixed("/workers/no-such-worker/last-rendered"), users(404)),
    "GET /api/v1/workers/{worker_id}/last-rendered/info": (
        fixed("/workers/no-such-worker/last-rendered/info"),
        users(404),
    ),
    "GET /api/v1/tasks/{task_id}": (on_task("/tasks/{id}"), users(200)),
    # a job's failures: anyone reads; clearing and releasing as the other job actions (the owner, wranglers)
    "GET /api/v1/jobs/{job_id}/blocklist": (on_job("/jobs/{id}/blocklist"), users(200)),
    "POST /api/v1/jobs/{job_id}/blocklist/clear": (
        on_job("/jobs/{id}/blocklist/clear", {"entries": [{"worker_id": "w", "task_type": "blender"}]}),
        users(200, other=403),
    ),
    "GET /api/v1/jobs/{job_id}/dependencies": (on_job("/jobs/{id}/dependencies"), users(200)),
    "POST /api/v1/jobs/{job_id}/release": (on_job("/jobs/{id}/release", {}), users(200, other=403)),
    # task logs: where to read one; the Server's copy (none: never uploaded); asking for one (never run: 409)
    "GET /api/v1/tasks/{task_id}/log-source": (on_task("/tasks/{id}/log-source"), users(200)),
    "GET /api/v1/tasks/{task_id}/log": (on_task("/tasks/{id}/log"), users(404)),
    "POST /api/v1/tasks/{task_id}/log/request": (on_task("/tasks/{id}/log/request"), users(409)),
    "POST /api/v1/tasks/{task_id}/status": (on_task("/tasks/{id}/status", {"action": "cancel"}), users(200, other=403)),
    # another artist's task is refused in its item of the answer, as the single route refuses it with a 403
    "POST /api/v1/tasks/bulk": (_task_bulk, users(200)),
    "GET /api/v1/tasks/bulk": (fixed("/tasks/bulk"), dict.fromkeys(WHO, 405)),  # not a 422 for the task id "bulk"
    "GET /api/v1/events": (fixed("/events"), users(200)),
    "POST /api/v1/manager/claim": (fixed("/manager/claim", {"capacity": 0}), only_manager(200)),
    "POST /api/v1/manager/updates": (fixed("/manager/updates", {"seq": 1}), only_manager(200)),
    # a task this Manager does not hold: the Manager is known, the task is not
    "POST /api/v1/manager/tasks/{task_id}/log": (fixed("/manager/tasks/1/log", None), only_manager(409)),
    "POST /api/v1/manager/client-token": (
        lambda farm: ("/manager/client-token", {"token": farm.tokens["artist"]}),
        only_manager(200),
    ),
}

MANAGER: dict[str, tuple[Call, dict[str, int]]] = {
    **docs_folder(),
    "GET /api/v1/openapi.json": (fixed("/openapi.json"), PUBLIC),
    "GET /": (fixed("/"), PUBLIC),
    "GET /api/v1/docs": (fixed("/docs"), PUBLIC),
    "GET /api/v1/docs-assets": (fixed("/docs-assets/swagger-ui.css"), PUBLIC),
    "GET /api/v1/health": (fixed("/health"), PUBLIC),
    # registration is what the registration secret is for: any caller that has it
    "POST /api/v1/worker/register": (
        lambda farm: ("/worker/register", {"registration_secret": farm.secret, "name": "w", "platform": "linux"}),
        PUBLIC,
    ),
    "POST /api/v1/worker/sign-on": (
        fixed("/worker/sign-on", {"name": "w", "platform": "linux", "task_types": ["blender"]}),
        only_worker(200),
    ),
    "POST /api/v1/worker/sign-off": (fixed("/worker/sign-off"), only_worker(204)),
    "POST /api/v1/worker/heartbeat": (fixed("/worker/heartbeat", {"status": "awake"}), only_worker(200)),
    "POST /api/v1/worker/task": (fixed("/worker/task", {"wait_seconds": 0}), only_worker(204)),
    # tasks this worker does not hold: known worker, refused task
    "POST /api/v1/worker/tasks/{task_id}/updates": (
        fixed("/worker/tasks/1/updates", {"updates": [{"seq": 1, "handout": 1, "status": "active"}]}),
        only_worker(409),
    ),
    "GET /api/v1/worker/tasks/{task_id}/may-i-run": (fixed("/worker/tasks/1/may-i-run"), only_worker(200)),
    # client routes: any user token of the Manager's Server; a Manager token is not a user's
    "GET /api/v1/status": (fixed("/status"), users(200)),
    "GET /api/v1/tasks/{task_id}/log": (fixed("/tasks/1/log"), users(404)),
    # a worker's sleep schedule: any user reads it; only wranglers and admins set it (the role first)
    "GET /api/v1/workers/{worker_id}/sleep-schedule": (fixed("/workers/no-such-worker/sleep-schedule"), users(404)),
    "PUT /api/v1/workers/{worker_id}/sleep-schedule": (
        fixed("/workers/no-such-worker/sleep-schedule", {"active": True, "days": [5, 6]}),
        users(404, artist=403),
    ),
}


def route_table(app: FastAPI) -> set[str]:
    out = set()
    for route in iter_route_contexts(app.routes):
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                out.add(f"{method} {route.path}")
    return out


def _status(http: httpx.Client, base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> int:
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    http.cookies.clear()  # each call stands alone: only its own headers say who calls
    with http.stream(method, base + path, **kwargs) as r:  # streamed: /events never ends
        if r.status_code >= 400:  # every refusal is the documented body, naming what it refuses
            r.read()
            errors = r.json()["errors"]
            assert errors and all(e["field"] for e in errors), f"{method} {path}: {r.status_code} {r.text}"
        return r.status_code


def _check(farm: Farm, base: str, table: dict[str, tuple[Call, dict[str, int]]]) -> None:
    wrong = []
    for route, (call, expected) in sorted(table.items()):
        method, template = route.split()
        for who in WHO:
            path, body = call(farm)
            full = path if template == "/" else API + path  # the root, outside the API: what it is, for a browser
            got = _status(farm.http, base, method, full, body, farm.headers(who))
            if got != expected[who]:
                wrong.append(f"{route} as {who}: {got}, expected {expected[who]}")
    assert not wrong, "\n".join(wrong)


def test_every_server_route_is_in_the_matrix(tmp_path: Path) -> None:
    app = create_server_app(ServerConfig(data_dir=tmp_path))
    assert route_table(app) == set(SERVER), "add the route to SERVER in this test, with who may call it"


def test_every_manager_route_is_in_the_matrix(tmp_path: Path) -> None:
    app = create_manager_app(ManagerConfig(server_url="http://127.0.0.1:9", token="x", data_dir=tmp_path))
    assert route_table(app) == set(MANAGER), "add the route to MANAGER in this test, with who may call it"


def test_server_role_matrix(farm: Farm) -> None:
    _check(farm, farm.server.url, SERVER)


def test_manager_role_matrix(farm: Farm) -> None:
    _check(farm, farm.manager.url, MANAGER)


@pytest.mark.parametrize("which", ["server", "manager"])
def test_no_route_is_shadowed_by_an_earlier_one(which: str, tmp_path: Path) -> None:
    """`/jobs/bulk` and friends must not be caught by an earlier `/jobs/{job_id}` of the same method."""
    if which == "server":
        app = create_server_app(ServerConfig(data_dir=tmp_path))
    else:
        app = create_manager_app(ManagerConfig(server_url="http://127.0.0.1:9", token="x", data_dir=tmp_path))
    routes = [r for r in iter_route_contexts(app.routes) if r.methods]
    for i, route in enumerate(routes):
        sample = re.sub(r"\{[^}]+\}", "1", str(route.path))
        for earlier in routes[:i]:
            regex = getattr(earlier.original_route, "path_regex", None)
            if regex is None or not (earlier.methods or set()) & (route.methods or set()):
                continue
            assert not regex.match(sample), f"{route.path} is shadowed by the earlier {earlier.path}"

"""Limits on load: the farm's job-size limit, per-user quotas and workers per Manager, just over each, and big jobs
stored in short transactions (other writes go through while one is under construction; a refused job leaves
nothing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.test_server_jobs import render_job
from tests.support.databases import fresh_postgres_database
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "TABLAO_MAX_TASKS_PER_JOB": "100",
        "TABLAO_MAX_ACTIVE_JOBS_PER_USER": "3",
        "TABLAO_MAX_UNFINISHED_TASKS_PER_USER": "150",
        "TABLAO_MAX_WORKERS_PER_MANAGER": "5",
    }
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None, env=env).start()
    yield srv
    srv.stop()


def _user(server: ServerProcess, name: str, role: str = "artist") -> dict[str, str]:
    h = server.headers()
    assert httpx.post(f"{server.url}{API}/users", json={"name": name, "role": role}, headers=h).is_success
    token = httpx.post(f"{server.url}{API}/tokens", json={"user": name}, headers=h).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _submit(server: ServerProcess, headers: dict[str, str], frames: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}{API}/jobs",
        json=render_job(frames=frames, chunk=1, preview_video=False),
        headers=headers,
        timeout=60,
    )


def _jobs(server: ServerProcess, headers: dict[str, str]) -> list[dict[str, Any]]:
    return list(httpx.get(f"{server.url}{API}/jobs", headers=headers).json()["items"])


def _fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


def test_job_size_limit(server: ServerProcess) -> None:
    h = _user(server, "size")
    r = _submit(server, h, "1-101")
    assert r.status_code == 422 and _fields(r) == ["settings"] and "limit of 100" in r.text, r.text
    assert _jobs(server, h) == [] or all(j["submitter"] != "size" for j in _jobs(server, h))
    assert _submit(server, h, "1-100").status_code == 201


def test_active_jobs_quota(server: ServerProcess) -> None:
    h = _user(server, "busy")
    for _ in range(3):
        assert _submit(server, h, "1").status_code == 201
    r = _submit(server, h, "1")
    assert r.status_code == 409 and _fields(r) == ["quota"], r.text
    job = next(j for j in _jobs(server, h) if j["submitter"] == "busy")
    assert httpx.post(f"{server.url}{API}/jobs/{job['id']}/status", json={"action": "cancel"}, headers=h).is_success
    assert _submit(server, h, "1").status_code == 201  # a finished job frees its place
    other = _user(server, "other")  # quotas are per user
    assert _submit(server, other, "1").status_code == 201


def test_unfinished_tasks_quota(server: ServerProcess) -> None:
    h = _user(server, "many")
    assert _submit(server, h, "1-100").status_code == 201
    r = _submit(server, h, "1-51")
    assert r.status_code == 409 and _fields(r) == ["quota"] and "150" in r.text, r.text
    assert _submit(server, h, "1-50").status_code == 201
    assert len([j for j in _jobs(server, h) if j["submitter"] == "many"]) == 2


def test_big_jobs_do_not_hold_other_writers(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("big"), database_url=None).start()
    try:
        h = srv.headers()
        small = _submit(srv, h, "1").json()
        result: list[httpx.Response] = []
        submitting = threading.Thread(target=lambda: result.append(_submit(srv, h, "1-200000")))
        submitting.start()
        seen_building = False
        while submitting.is_alive():
            building = httpx.get(f"{srv.url}{API}/jobs", params={"status": "under-construction"}, headers=h).json()
            if building["items"]:
                seen_building = True
                # another write while the big job's chunks go in: it must not wait for the whole job
                t = time.monotonic()
                r = httpx.post(f"{srv.url}{API}/jobs/{small['id']}/priority", json={"priority": 80}, headers=h)
                took = time.monotonic() - t
                assert r.status_code == 200
                still = httpx.get(f"{srv.url}{API}/jobs/{building['items'][0]['id']}", headers=h).json()
                if still["status"] == "under-construction":
                    assert took < 5.0
                    break
            time.sleep(0.05)
        submitting.join(timeout=240)
        assert seen_building, "the big job was never seen under construction: not stored in chunks?"
        assert result and result[0].status_code == 201, result[0].text if result else "no answer"
        big = result[0].json()
        assert big["status"] == "queued" and big["tasks_total"] == 200_000
    finally:
        srv.stop()


def test_workers_per_manager_limit(server: ServerProcess) -> None:
    """A Manager reporting ever more new worker ids gets rows for its limit's worth; the rest of its batch applies."""
    link = {"Authorization": f"Bearer {add_manager(server, 'many-workers')}"}
    workers = [{"id": f"many-{i}", "name": f"many-{i}", "platform": "linux", "task_types": ["blender"], "tags": [],
                "status": "awake"} for i in range(8)]  # fmt: skip
    r = httpx.post(f"{server.url}{API}/manager/updates", json={"seq": 1, "workers": workers}, headers=link)
    assert r.status_code == 200, r.text
    shown = [w["id"] for w in httpx.get(f"{server.url}{API}/workers", headers=server.headers()).json()]
    assert sorted(w for w in shown if w.startswith("many-")) == [f"many-{i}" for i in range(5)]


@pytest.mark.postgres
def test_counted_limits_hold_when_the_requests_come_at_once_on_postgresql(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """From a hostile-input audit: on PostgreSQL each transaction counted before either inserted, so twelve
    submissions sent at once past a quota of three made twelve jobs, and forty webhooks at once made 51 of 50."""
    with fresh_postgres_database() as url:
        env = {"TABLAO_MAX_ACTIVE_JOBS_PER_USER": "3", "TABLAO_MAX_UNFINISHED_TASKS_PER_USER": "5"}
        srv = ServerProcess(data_dir=tmp_path_factory.mktemp("pg"), database_url=url, env=env).start()
        try:
            jobs_h, tasks_h, admin = _user(srv, "racer", "wrangler"), _user(srv, "racer2", "wrangler"), srv.headers()

            def submit(headers: dict[str, str], frames: str) -> int:
                body = {"name": "at once", "type": "exec", "start_paused": True,
                        "settings": {"command": ["true"], "frames": frames}}  # fmt: skip
                return httpx.post(f"{srv.url}{API}/jobs", json=body, headers=headers, timeout=60).status_code

            def webhook(i: int) -> int:
                body = {"name": f"hook-{i}", "url": "http://127.0.0.1:9/hook"}
                return httpx.post(f"{srv.url}{API}/webhooks", json=body, headers=admin, timeout=60).status_code

            for i in range(45):
                assert webhook(i) == 201
            with ThreadPoolExecutor(12) as pool:
                by_jobs = sorted(pool.map(lambda _: submit(jobs_h, "1"), range(12)))
                by_tasks = sorted(pool.map(lambda _: submit(tasks_h, "1-2"), range(12)))  # 2 jobs of 2 fit in 5
                hooks = sorted(pool.map(webhook, range(100, 112)))
            assert by_jobs == [201] * 3 + [409] * 9
            assert by_tasks == [201] * 2 + [409] * 10
            assert hooks == [201] * 5 + [409] * 7
            listed = httpx.get(f"{srv.url}{API}/jobs", params={"limit": 100}, headers=admin).json()["items"]
            assert sorted(j["submitter"] for j in listed) == ["racer"] * 3 + ["racer2"] * 2
            assert len(httpx.get(f"{srv.url}{API}/webhooks", headers=admin).json()) == 50
        finally:
            srv.stop()

"""A wrangler's work on workers over real HTTP: edit tags, forget a worker, its utilisation history, the farm
view; with a real Manager between the Server and a scripted worker (the changes travel in the Manager's
update answers)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.db.engine import SQLITE_NAME
from tests.integration.test_worker_agent import farm, submit  # noqa: F401 - the fixture
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)


def _user_token(server: ServerProcess, name: str, role: str) -> dict[str, str]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
        r = admin.post("/users", json={"name": name, "role": role, "password": f"{name}-password"})
        assert r.status_code == 201, r.text
        token = admin.post("/tokens", json={"user": name}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _workers(server: ServerProcess) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return {w["id"]: w for w in r.json()}


def _heartbeat(w: ScriptedWorker, cpu: float, memory: float, status: str = "awake") -> httpx.Response:
    sample = {"time": datetime.now(UTC).isoformat(), "cpu_percent": cpu, "memory_percent": memory,
              "memory_used_mb": 1000.0}  # fmt: skip
    return w.http.post("/heartbeat", json={"status": status, "utilisation": sample})


@pytest.fixture
def signed_on(farm: tuple[ServerProcess, ManagerProcess]) -> Iterator[tuple[ServerProcess, ScriptedWorker]]:  # noqa: F811
    server, mgr = farm
    w = ScriptedWorker(mgr.url, "wa").register(mgr.registration_secret)
    w.sign_on(tags=("cpu",))
    assert _heartbeat(w, 50.0, 40.0).status_code == 200
    wait_for(lambda: (_workers(server).get(w.worker_id) or {}).get("utilisation"), what="the worker at the Server")
    yield server, w
    w.close()


def test_history_tags_and_forgetting(signed_on: tuple[ServerProcess, ScriptedWorker]) -> None:
    server, w = signed_on
    base = f"{server.url}{API}/workers/{w.worker_id}"
    admin = server.headers()
    artist = _user_token(server, "ana", "artist")
    wrangler = _user_token(server, "wes", "wrangler")

    # the history: the sample the heartbeat carried, with no GPU (this machine has none it can measure)
    hist = httpx.get(f"{base}/utilisation", headers=artist, timeout=30).json()
    assert hist["worker_id"] == w.worker_id and hist["sample_seconds"] > 0
    assert [(s["cpu_percent"], s["memory_percent"], s["gpu_percent"]) for s in hist["samples"]] == [(50.0, 40.0, None)]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert httpx.get(f"{base}/utilisation", params={"since": future}, headers=admin, timeout=30).json()["samples"] == []
    for params, field in (({"limit": 0}, "limit"), ({"limit": 10**6}, "limit"), ({"since": "yesterday"}, "since")):
        r = httpx.get(f"{base}/utilisation", params=params, headers=admin, timeout=30)
        assert r.status_code == 422 and field in r.text, r.text
    assert httpx.get(f"{server.url}{API}/workers/nobody/utilisation", headers=admin, timeout=30).status_code == 404

    # tags: a job that wants "gpu" waits while the worker offers only "cpu"
    job = httpx.post(
        f"{server.url}{API}/jobs",
        json={"name": "gpu-job", "type": "exec", "settings": {"command": ["true"], "frames": "1"}, "tags": ["gpu"]},
        headers=admin,
        timeout=30,
    )
    assert job.status_code == 201, job.text
    assert w.next_task(wait=2.0) is None
    assert httpx.put(f"{base}/tags", json={"tags": ["gpu"]}, headers=artist, timeout=30).status_code == 403
    for body in ({"tags": ["no spaces"]}, {"tags": ["x" * 65]}, {"tags": [f"t{i}" for i in range(51)]}, {}):
        r = httpx.put(f"{base}/tags", json=body, headers=wrangler, timeout=30)
        assert r.status_code == 422 and "tags" in r.text, r.text
    long_id = httpx.put(f"{server.url}{API}/workers/{'x' * 65}/tags", json={"tags": []}, headers=admin, timeout=30)
    assert long_id.status_code == 422
    missing = httpx.put(f"{server.url}{API}/workers/nobody/tags", json={"tags": []}, headers=admin, timeout=30)
    assert missing.status_code == 404
    r = httpx.put(f"{base}/tags", json={"tags": ["gpu", "cpu", "gpu"]}, headers=wrangler, timeout=30)
    assert r.status_code == 200 and r.json()["tags"] == ["cpu", "gpu"], r.text
    # the edit reaches the Manager in the answer to its next batch: then the job's task comes to the worker
    task = wait_for(lambda: w.next_task(wait=1.0), what="the tagged task once the Manager has the new tags")
    assert task["job_name"] == "gpu-job"
    assert w.run_task(task).status_code == 200
    # the worker's own tags at its next sign-on do not undo the wrangler's edit, at the Manager or the Server
    w.sign_on(tags=("cpu",))
    _heartbeat(w, 10.0, 20.0)
    time.sleep(4)  # more than a report interval
    assert _workers(server)[w.worker_id]["tags"] == ["cpu", "gpu"]

    # the farm view
    status = httpx.get(f"{server.url}{API}/farm/status", headers=artist, timeout=30).json()
    assert status["workers_busy"] + status["workers_idle"] == 1 and status["workers_offline"] == 0
    assert status["rate_minutes"] == 5 and status["tasks_per_minute"] >= 0

    # forgetting: refused while the worker is online, and to artists
    r = httpx.delete(base, headers=wrangler, timeout=30)
    assert r.status_code == 409 and "offline" in r.json()["detail"], r.text
    assert w.http.post("/sign-off").status_code == 204
    wait_for(lambda: _workers(server)[w.worker_id]["status"] == "offline", what="the worker offline at the Server")
    assert httpx.delete(base, headers=artist, timeout=30).status_code == 403
    assert httpx.delete(base, headers=wrangler, timeout=30).status_code == 204
    assert httpx.delete(base, headers=wrangler, timeout=30).status_code == 404
    assert w.worker_id not in _workers(server)
    assert httpx.get(f"{base}/utilisation", headers=admin, timeout=30).status_code == 404
    # the Manager forgets it too: its credentials stop working, and it does not come back at the Server
    wait_for(lambda: w.heartbeat().status_code == 401, what="the Manager to forget the worker")
    time.sleep(4)
    assert w.worker_id not in _workers(server)
    status = httpx.get(f"{server.url}{API}/farm/status", headers=admin, timeout=30).json()
    assert status["workers_busy"] + status["workers_idle"] + status["workers_offline"] == 0


def test_status_requests_of_an_offline_worker(signed_on: tuple[ServerProcess, ScriptedWorker]) -> None:
    server, w = signed_on
    url = f"{server.url}{API}/workers/{w.worker_id}/status-request"
    assert w.http.post("/sign-off").status_code == 204
    wait_for(lambda: _workers(server)[w.worker_id]["status"] == "offline", what="the worker offline")
    for status in ("shutdown", "restart"):
        r = httpx.post(url, json={"status": status}, headers=server.headers(), timeout=30)
        assert r.status_code == 409 and "offline" in r.text, r.text
    bad = httpx.post(url, json={"status": "explode"}, headers=server.headers(), timeout=30)
    assert bad.status_code == 422 and "status" in bad.text
    # a sleep request waits for the worker: it signs on asleep
    r = httpx.post(url, json={"status": "asleep"}, headers=server.headers(), timeout=30)
    assert r.status_code == 200 and r.json()["status_requested"] == "asleep"
    answer = wait_for(
        lambda: (a := w.sign_on().json())["status_requested"] == "asleep" and a, what="the request at the Manager"
    )
    assert answer["lazy"] is True
    assert w.heartbeat("asleep").status_code == 200
    wait_for(
        lambda: (x := _workers(server)[w.worker_id])["status"] == "asleep" and x["status_requested"] is None,
        what="the request fulfilled at the Server",
    )


def test_a_wranglers_request_reaches_an_idle_worker_at_once(fresh_server: ServerProcess, tmp_path: Path) -> None:
    """On an idle farm nothing would carry the request before the Manager's keep-alive (10 s with the default
    lease) and the worker's next heartbeat: the Manager's waiting claim ends to collect it, and the worker's
    waiting task request ends to hand it over."""
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "idle"), tmp_path / "manager").start()
    w = ScriptedWorker(mgr.url, "wi").register(mgr.registration_secret)
    try:
        w.sign_on()
        assert w.heartbeat().status_code == 200
        wait_for(lambda: w.worker_id in _workers(fresh_server), what="the worker at the Server")
        time.sleep(0.5)  # the Manager's claim waits at the Server now (nothing to run)
        with ThreadPoolExecutor(1) as pool:
            asking = pool.submit(w.ask, 20.0)  # an idle worker waiting for a task
            time.sleep(0.5)
            asked = time.monotonic()
            url = f"{fresh_server.url}{API}/workers/{w.worker_id}/status-request"
            r = httpx.post(url, json={"status": "asleep", "lazy": False}, headers=fresh_server.headers(), timeout=30)
            assert r.status_code == 200, r.text
            answer = asking.result(timeout=30)
            took = time.monotonic() - asked
        assert answer.status_code == 204, answer.text
        assert answer.headers["Tablao-Status-Requested"] == "asleep" and answer.headers["Tablao-Status-Lazy"] == "0"
        assert took < 4.0, f"the request took {took:.1f} s to reach the worker"
        # a later task request still says it while the worker has not carried it out, but does not end early
        again = w.ask(0.0)
        assert again.status_code == 204 and again.headers["Tablao-Status-Requested"] == "asleep"
        assert w.heartbeat("asleep").status_code == 200
        assert "Tablao-Status-Requested" not in w.ask(0.0).headers
    finally:
        w.close()
        mgr.stop()


def test_a_job_stored_with_a_tag_from_before_the_rule_runs_on_a_worker_with_that_tag_now(
    farm: tuple[ServerProcess, ManagerProcess],  # noqa: F811
) -> None:
    """`rtx 4090` was a tag until one rule held everywhere; a worker signs on with `rtx-4090` now (which `--tags`
    suggests), and the job queued before still runs there. Its stored tags are shown as they were."""
    server, mgr = farm
    body = {"name": "old-tags", "type": "exec", "settings": {"command": ["true"], "frames": "1"}, "tags": ["gpu"],
            "start_paused": True}  # fmt: skip
    r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    job_id = int(r.json()["id"])
    with sqlite3.connect(server.data_dir / SQLITE_NAME) as db:  # as a farm from before the rule stored it
        db.execute("UPDATE jobs SET tags = ? WHERE id = ?", (json.dumps(["rtx 4090"]), job_id))
    other = ScriptedWorker(mgr.url, "cpu-only").register(mgr.registration_secret)
    other.sign_on(tags=("cpu",))
    w = ScriptedWorker(mgr.url, "rtx").register(mgr.registration_secret)
    w.sign_on(tags=("rtx-4090",))
    try:
        r = httpx.post(f"{server.url}{API}/jobs/{job_id}/status", json={"action": "resume"}, headers=server.headers(),
                       timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        assert other.next_task(wait=2.0) is None
        task = wait_for(lambda: w.next_task(wait=1.0), what="the old job's task on the rtx-4090 worker")
        assert task["job_id"] == job_id
        shown = httpx.get(f"{server.url}{API}/jobs/{job_id}", headers=server.headers(), timeout=30).json()
        assert shown["tags"] == ["rtx 4090"]
    finally:
        w.close()
        other.close()

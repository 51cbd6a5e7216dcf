"""Bad input at the Manager's Worker API: clear 4xx answers naming the field, nothing stored twice, nothing lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_manager_basics import exec_job, submit
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager").start()
    submit(server, exec_job("bad-input", frames="1-40"))
    yield server, mgr
    mgr.stop()
    server.stop()


@pytest.fixture
def worker(farm: tuple[ServerProcess, ManagerProcess]) -> Iterator[ScriptedWorker]:
    w = ScriptedWorker(farm[1].url, "w").register(farm[1].registration_secret)
    w.sign_on()
    yield w
    w.close()


JSON = {"Content-Type": "application/json"}


def field_of(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


def test_registration_secret_file_is_private(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    path = farm[1].data_dir / "worker-registration.secret"
    assert path.stat().st_mode & 0o777 == 0o600


def test_wrong_registration_secret_and_wrong_worker_secret(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    url = farm[1].url + API + "/worker"
    r = httpx.post(url + "/register", json={"registration_secret": "nope", "name": "x", "platform": "linux"})
    assert r.status_code == 401 and field_of(r) == ["registration_secret"]
    w = ScriptedWorker(farm[1].url, "w2").register(farm[1].registration_secret)
    try:
        r = httpx.post(url + "/heartbeat", json={"status": "awake"}, auth=(w.worker_id, "wrong"))
        assert r.status_code == 401
        r = httpx.post(url + "/heartbeat", json={"status": "awake"})
        assert r.status_code == 401 and "Basic" in r.json()["detail"]
        r = httpx.post(url + "/heartbeat", json={"status": "awake"}, auth=("no-such-worker", "x"))
        assert r.status_code == 401
        # asking for work before signing on
        r = w.ask()
        assert r.status_code == 409 and field_of(r) == ["worker"]
    finally:
        w.close()


def test_updates_for_unknown_or_foreign_tasks_and_stale_handouts(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    other = ScriptedWorker(farm[1].url, "other").register(farm[1].registration_secret)
    try:
        other.sign_on()
        mine = worker.next_task()
        theirs = other.next_task()
        assert mine is not None and theirs is not None
        r = worker.send(10**9, [worker.update(handout=1, status="active")])
        assert r.status_code == 409 and field_of(r) == ["task_id"]
        r = worker.send(theirs["id"], [worker.update(handout=theirs["handout"], status="completed")])
        assert r.status_code == 409 and "not assigned to this worker" in r.json()["detail"]
        r = worker.send(mine["id"], [worker.update(handout=mine["handout"] + 100, status="active")])
        assert r.status_code == 409 and field_of(r) == ["updates[0].handout"]
        may = worker.http.get(f"/tasks/{theirs['id']}/may-i-run").json()
        assert may["may_keep_running"] is False
        # the refused updates changed nothing: both can still finish their own task
        assert worker.run_task(mine).status_code == 200
        assert other.run_task(theirs).status_code == 200
    finally:
        other.close()


def test_repeated_and_out_of_order_seq(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    server, mgr = farm
    task = worker.next_task()
    assert task is not None
    a = task["handout"]
    first = [worker.update(handout=a, status="active"), worker.update(handout=a, log_lines=["one", "two"])]
    assert worker.send(task["id"], first).json()["last_seq"] == first[-1]["seq"]
    # the same batch again (the answer was lost): accepted, nothing stored twice
    again = worker.send(task["id"], first)
    assert again.status_code == 200 and again.json()["last_seq"] == first[-1]["seq"]
    # out of order inside a batch: refused, naming the field
    x, y = worker.update(handout=a, log_lines=["x"]), worker.update(handout=a, log_lines=["y"])
    r = worker.send(task["id"], [y, x])
    assert r.status_code == 422 and field_of(r) == ["updates[1].seq"]
    # and nothing of it was stored: in order, both go through
    assert worker.send(task["id"], [x, y]).status_code == 200
    log = httpx.get(f"{mgr.url}{API}/tasks/{task['id']}/log", headers=server.headers()).text
    assert log.splitlines() == ["one", "two", "x", "y"]
    # signing on again tells the worker the last seq taken from it: a worker whose update buffer was wiped
    # numbers its updates after it rather than have them ignored as repeats (services/worker/buffer.py)
    assert worker.sign_on().json()["last_seq"] == worker.seq


def test_oversized_log_chunks_and_bodies(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    task = worker.next_task()
    assert task is not None
    a = task["handout"]
    r = worker.send(task["id"], [{"seq": worker.seq + 1, "handout": a, "log_lines": ["x"] * 5001}])
    assert (r.status_code == 422 and field_of(r) == ["updates.0.log_lines"]) or "log_lines" in r.text
    r = worker.send(task["id"], [{"seq": worker.seq + 1, "handout": a, "log_lines": ["x" * 10_001]}])
    assert r.status_code == 422 and field_of(r) == ["updates[0].log_lines[0]"]
    r = worker.http.post(
        f"/tasks/{task['id']}/updates", content=b"{" + b" " * (9 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413
    r = worker.http.post(
        f"/tasks/{task['id']}/updates", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    r = worker.ask(finished=(task["id"], []))
    assert r.status_code == 422  # finished needs at least one update
    body: dict[str, Any] = {"finished": {"updates": [{"seq": worker.seq + 1, "handout": a, "status": "completed"}]}}
    r = worker.http.post("/task", json=body)
    assert r.status_code == 422 and field_of(r) == ["finished_task_id"]
    r = worker.send(task["id"], [{"seq": worker.seq + 1, "handout": a, "status": "assigned"}])
    assert r.status_code == 422 and field_of(r) == ["updates[0].status"]
    # the task is still this worker's, untouched
    assert worker.run_task(task).status_code == 200


def test_bad_task_requests_name_the_field(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    """`/task` reads its own body (the hot route skips FastAPI's body handling); errors must stay as clear."""
    r = worker.http.post("/task", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    r = worker.http.post("/task", json={"wait_seconds": 600})
    assert r.status_code == 422 and field_of(r) == ["wait_seconds"], r.text
    bad_update = {"finished_task_id": 1, "finished": {"updates": [{"seq": 0, "handout": 1}]}}
    r = worker.http.post("/task", json=bad_update)
    assert r.status_code == 422 and field_of(r) == ["finished.updates[0].seq"], r.text
    r = worker.http.post("/task", json={"finished": {"updates": [worker.update(handout=1)]}})
    assert r.status_code == 422 and field_of(r) == ["finished_task_id"], r.text
    r = httpx.post(f"{farm[1].url}{API}/worker/task", json={})
    assert r.status_code == 401 and field_of(r) == ["authorization"], r.text
    # nothing of that was taken as a request for work: the worker holds no task
    assert worker.http.post("/heartbeat", json={"status": "awake"}).status_code == 200


def test_a_nul_character_is_refused_naming_the_field(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    """The Server's database may be PostgreSQL, which stores no NUL: the Manager takes none in (a Worker replaces
    those its tasks print, services/worker/buffer.py)."""
    task = worker.next_task()
    assert task is not None
    line = {"seq": worker.seq + 1, "handout": task["handout"], "log_lines": ["fine", "a\x00b"]}
    r = worker.send(task["id"], [line])
    assert r.status_code == 422 and field_of(r) == ["updates[0].log_lines[1]"], r.text
    r = worker.ask(finished=(task["id"], [{**line, "status": "completed"}]))  # the hot route too
    assert r.status_code == 422 and field_of(r) == ["finished.updates[0].log_lines[1]"], r.text
    half = json.dumps({"updates": [{**line, "log_lines": ["\ud800"]}]})  # ASCII, the surrogate escaped
    r = worker.http.post(f"/tasks/{task['id']}/updates", content=half, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and field_of(r) == ["updates[0].log_lines[0]"], r.text
    signing_on = {"name": worker.name, "platform": "linux", "task_types": ["exec"], "tags": ["gpu", "\x00"]}
    r = worker.http.post("/sign-on", json=signing_on)
    assert r.status_code == 422 and field_of(r) == ["tags[1]"], r.text
    # nothing of it was taken: the task is still this worker's, and runs
    assert worker.run_task(task).status_code == 200


def test_a_time_with_no_utc_equivalent_is_refused_and_a_wrong_clock_is_kept_within_the_job(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    """One such time, taken with a 200, stopped every later batch of the Manager at the Server (a 500 on each
    resend); a worker's clock at year 1 made a run of two thousand years."""
    server, _ = farm
    task = worker.next_task()
    assert task is not None
    no_utc = {"handout": task["handout"], "status": "active", "time": "0001-01-01T00:00:00+23:59"}
    r = worker.send(task["id"], [worker.update(**no_utc)])
    assert r.status_code == 422 and field_of(r) == ["updates[0].time"], r.text
    r = worker.ask(finished=(task["id"], [worker.update(**{**no_utc, "status": "completed"})]))
    assert r.status_code == 422 and field_of(r) == ["finished.updates[0].time"], r.text
    year_one = "0001-01-01T00:00:00Z"
    a = task["handout"]
    r = worker.send(task["id"], [worker.update(handout=a, status="active", time=year_one)])
    assert r.status_code == 200, r.text
    assert worker.send(task["id"], [worker.update(handout=a, status="completed", time=year_one)]).status_code == 200

    def at_server() -> dict[str, Any] | None:
        got = httpx.get(f"{server.url}{API}/tasks/{task['id']}", headers=server.headers()).json()
        return got if got["status"] == "completed" else None

    got = wait_for(at_server, 20, "the completion at the Server")
    job = httpx.get(f"{server.url}{API}/jobs/{got['job_id']}", headers=server.headers()).json()
    assert got["started"] >= job["created"] and got["finished"] >= job["created"]


def test_the_task_route_takes_only_a_body_sent_as_json(worker: ScriptedWorker) -> None:
    """The input guard looks for NULs and NaN in JSON bodies only: a body labelled otherwise went past it."""
    task = worker.next_task()
    assert task is not None
    finished = {"updates": [worker.update(handout=task["handout"], status="completed", log_lines=["a\x00b"])]}
    body = json.dumps({"wait_seconds": 0, "finished_task_id": task["id"], "finished": finished})
    for kind in ("text/plain", None):
        headers = {"Content-Type": kind} if kind else {}
        r = worker.http.post("/task", content=body, headers=headers)
        assert r.status_code == 422 and field_of(r) == ["body"], r.text
    r = worker.http.post("/task", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and field_of(r) == ["finished.updates[0].log_lines[0]"], r.text
    assert worker.run_task(task).status_code == 200  # nothing of it was taken


def test_nan_and_infinity_are_refused_naming_the_field(worker: ScriptedWorker) -> None:
    """Not JSON, though Python's parser takes them; the Server's PostgreSQL JSON columns would not: a worker's
    sample holding one would have stopped its Manager's batches."""
    sample = '{"time": "2026-12-03T10:00:00Z", "cpu_percent": 5, "memory_percent": 5, "memory_used_mb": Infinity}'
    for heartbeat in (f'{{"status": "awake", "utilisation": {sample}}}', '{"status": "awake", "current_task_id": NaN}'):
        r = worker.http.post("/heartbeat", content=heartbeat, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["message"] == "NaN and Infinity are not JSON numbers; no field accepts them"
    assert field_of(r) == ["current_task_id"]
    r = worker.http.post(
        "/heartbeat", content=heartbeat.replace("NaN", "null"), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    # numbers Python's parser makes Infinity are refused the same way, by the input guard (the model would too)
    for number in ("1e999", "-1e999", "1E400"):
        heartbeat = f'{{"status": "awake", "utilisation": {sample.replace("Infinity", number)}}}'
        r = worker.http.post("/heartbeat", content=heartbeat, headers=JSON)
        assert r.status_code == 422 and field_of(r) == ["utilisation.memory_used_mb"], r.text
        assert "would be Infinity" in r.json()["errors"][0]["message"]
    # ordinary floats with exponents are samples like any other; 1e308 is a float, past the field's bound
    usage = sample.replace("Infinity", "1e3").replace('"cpu_percent": 5', '"cpu_percent": 2.5e-10')
    r = worker.http.post("/heartbeat", content=f'{{"status": "awake", "utilisation": {usage}}}', headers=JSON)
    assert r.status_code == 200, r.text
    usage = sample.replace("Infinity", "1e308")
    r = worker.http.post("/heartbeat", content=f'{{"status": "awake", "utilisation": {usage}}}', headers=JSON)
    assert r.status_code == 422 and field_of(r) == ["utilisation.memory_used_mb"], r.text
    assert "less than or equal" in r.json()["errors"][0]["message"]


def test_the_task_route_documents_its_body(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    spec = httpx.get(f"{farm[1].url}/api/v1/openapi.json").json()
    schema = spec["paths"]["/api/v1/worker/task"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"wait_seconds", "finished", "finished_task_id", "running_task_id"}
    refs = [ref.rsplit("/", 1)[1] for ref in _refs(schema)]
    assert refs and all(name in spec["components"]["schemas"] for name in refs)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_an_answer_lists_at_most_50_errors_and_unreadable_json_names_the_body(
    farm: tuple[ServerProcess, ManagerProcess],
) -> None:
    """The public registration route: 500,000 unknown keys made a multi-megabyte answer; nesting too deep was a
    400 naming no field."""
    _, mgr = farm
    url = f"{mgr.url}{API}/worker/register"
    r = httpx.post(url, json={f"k{i}": 0 for i in range(4_000)}, timeout=60)  # within its 64 KiB
    assert r.status_code == 422  # past 50 unknown fields of one object: one error saying how many
    assert [e["field"] for e in r.json()["errors"]] == ["body"] and len(r.content) < 20_000
    assert r.json()["detail"].startswith("body: 4000 unknown fields ('k0', 'k1', 'k2', ...)"), r.text[:300]
    r = httpx.post(url, content=b"[" * 10_000 + b"]" * 10_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body"], r.text


@pytest.mark.parametrize("name", ["w\nINFO fake line", "\u202ew", "a b", "-w", "w" * 65])
def test_a_worker_name_follows_the_rule_of_its_command_line(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker, name: str
) -> None:
    """Names go into logs and lists: a line break forged log lines, a right-to-left override turned names around."""
    _, mgr = farm
    r = httpx.post(
        f"{mgr.url}{API}/worker/register",
        json={"registration_secret": mgr.registration_secret, "name": name, "platform": "linux"},
    )
    assert r.status_code == 422 and field_of(r) == ["name"], r.text
    r = worker.http.post("/sign-on", json={"name": name, "platform": "linux", "task_types": ["exec"]})
    assert r.status_code == 422 and field_of(r) == ["name"], r.text


def test_the_public_registration_route_takes_only_a_small_body(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    """Anyone may call it: 550,000 unknown keys (7.5 MB) made the Manager build as many errors, 200 MB a request."""
    _, mgr = farm
    body = {"registration_secret": "x", "name": "w", "platform": "linux", "pad": "a" * 70_000}
    r = httpx.post(f"{mgr.url}{API}/worker/register", json=body)
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"], r.text


def test_a_seq_jumping_past_any_worker_s_count_is_refused_and_the_worker_goes_on(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    """One update at the highest seq the wire takes was acknowledged; every later update of the worker was then a
    "repeat", acknowledged and dropped (its completion lost, its task soft-failed when it asked for the next)."""
    task = worker.next_task()
    assert task is not None
    top = {"seq": 2**63 - 1, "handout": task["handout"], "status": "active"}
    r = worker.send(task["id"], [top])
    assert r.status_code == 422 and field_of(r) == ["updates[0].seq"], r.text
    assert "2**40" in r.json()["detail"]
    assert worker.sign_on().json()["last_seq"] == worker.seq  # nothing taken from it
    assert worker.run_task(task).status_code == 200
    r = httpx.get(f"{farm[1].url}{API}/tasks/{task['id']}/log", headers=farm[0].headers())
    assert f"{task['name']} line 0" in r.text  # the completion was stored, not taken for a repeat


def test_a_finished_task_id_without_its_updates_is_refused_and_the_task_kept(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    """It was ignored, and the task it named soft-failed as "asked for a new task without finishing this one"."""
    task = worker.next_task()
    assert task is not None
    r = worker.http.post("/task", json={"finished_task_id": task["id"]})
    assert r.status_code == 422 and field_of(r) == ["finished"], r.text
    assert worker.run_task(task).status_code == 200  # still this worker's hand-out


def test_a_heartbeat_cannot_say_offline(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    """A worker running a task was listed offline by a heartbeat saying so; leaving is signing off."""
    r = worker.heartbeat("offline")
    assert r.status_code == 422 and field_of(r) == ["status"] and "sign-off" in r.json()["detail"], r.text
    assert worker.heartbeat("awake").status_code == 200


def test_unknown_field_names_are_cut_and_written_out_in_errors(worker: ScriptedWorker) -> None:
    """A 100,000-character unknown key came back whole, twice (a 200 KB answer); U+202E and escapes raw."""
    r = worker.http.post("/heartbeat", json={"status": "awake", "k" * 100_000: 1, "\u202eevil\x1b[31m": 2})
    assert r.status_code == 422, r.text
    assert len(r.content) < 2_000
    fields = field_of(r)
    assert all(len(f) <= 60 for f in fields) and "\u202e" not in r.text and "\x1b" not in r.text
    assert "\\u202eevil\\x1b[31m" in fields


def test_a_body_not_sent_as_json_is_told_so(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    """It was "Input should be a valid dictionary or object to extract fields from", at the Manager and the Server."""
    for headers in ({"Content-Type": "text/plain"}, {}):
        r = worker.http.post("/heartbeat", content=b'{"status": "awake"}', headers=headers)
        assert r.status_code == 422 and field_of(r) == ["body"], r.text
        assert "Content-Type: application/json" in r.json()["detail"]
    server = farm[0]
    r = httpx.post(f"{server.url}{API}/jobs", content=b"{}", headers={**server.headers(), "Content-Type": "text/plain"})
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["detail"], r.text


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker
) -> None:
    """Starlette answered 307 with a Location built from the request's Host header (`http://evil.example/...`)."""
    r = worker.http.post("/heartbeat/", json={"status": "awake"}, headers={"Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers, r.text
    r = httpx.get(f"{farm[0].url}{API}/jobs/", headers={**farm[0].headers(), "Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers, r.text


def test_sleep_schedule_bounds(farm: tuple[ServerProcess, ManagerProcess], worker: ScriptedWorker) -> None:
    server, mgr = farm
    url = f"{mgr.url}{API}/workers"
    r = httpx.put(f"{url}/{worker.worker_id}/sleep-schedule", json={"end": "24:59"}, headers=server.headers())
    assert r.status_code == 422 and field_of(r) == ["end"], r.text
    assert httpx.put(
        f"{url}/{worker.worker_id}/sleep-schedule", json={"end": "24:00"}, headers=server.headers()
    ).is_success
    r = httpx.get(f"{url}/{'w' * 5_000}/sleep-schedule", headers=server.headers())
    assert r.status_code == 422 and len(r.content) < 2_000, r.text  # the id was repeated whole in a 404

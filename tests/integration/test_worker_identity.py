"""One worker identity, one process: the last process to sign on with it is answered, an earlier one refused.

A machine cloned with its worker's data folder runs a second process with the same credentials; without this
each task request of one would take the other's task back (`Tablao-Worker-Instance`, docs/manager.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.integration.test_manager_basics import exec_job, submit
from tests.support.manager import ManagerProcess, ScriptedWorker, WorkerFactory, add_manager, worker_factory
from tests.support.services import ServerProcess

HEADER = "Tablao-Worker-Instance"


@pytest.fixture
def new_worker() -> Iterator[WorkerFactory]:
    with worker_factory() as make:
        yield make


@pytest.fixture
def farm(fresh_server: ServerProcess, tmp_path: Path) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager").start()
    yield fresh_server, mgr
    mgr.stop()


def _process(mgr: ManagerProcess, of: ScriptedWorker, instance: str) -> ScriptedWorker:
    """Another process with `of`'s credentials (a copied data folder), calling as `instance`."""
    other = ScriptedWorker(mgr.url, of.name)
    other.worker_id, other.secret = of.worker_id, of.secret
    other.http.auth = httpx.BasicAuth(of.worker_id, of.secret)
    other.http.headers[HEADER] = instance
    return other


class Pair(NamedTuple):
    """A registered worker and two processes using its credentials: `first` and `second`."""

    registered: ScriptedWorker
    first: ScriptedWorker
    second: ScriptedWorker


@pytest.fixture
def pair(farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory) -> Iterator[Pair]:
    registered = new_worker(farm[1], "w")
    first, second = _process(farm[1], registered, "first-1"), _process(farm[1], registered, "second-2")
    yield Pair(registered, first, second)
    first.close()
    second.close()


def _refused_as_superseded(r: httpx.Response) -> None:
    assert r.status_code == 409, r.text
    assert r.headers.get("Tablao-Superseded") == "1"
    body = r.json()
    assert "another process signed on as worker" in body["detail"]
    assert body["errors"][0]["field"] == HEADER.lower()


def test_the_last_process_signed_on_is_answered_and_the_earlier_one_refused_everywhere(
    farm: tuple[ServerProcess, ManagerProcess], pair: Pair
) -> None:
    server, _mgr = farm
    _registered, first, second = pair
    first.sign_on()
    submit(server, exec_job("identity", frames="1-4"))
    task = first.next_task()
    assert task is not None
    second.sign_on()
    # every call of the earlier process: refused with the header that tells it to stop, nothing applied
    _refused_as_superseded(first.ask())
    _refused_as_superseded(first.heartbeat())
    _refused_as_superseded(first.run_task(task))
    _refused_as_superseded(first.http.get(f"/tasks/{task['id']}/may-i-run", params={"handout": task["handout"]}))
    _refused_as_superseded(first.http.post("/sign-off"))
    # the process signed on last works the identity: its task request gives the abandoned task back first
    got = second.next_task()
    assert got is not None
    assert second.run_task(got).status_code == 200
    # signing on again, the earlier process takes the identity back (a restart after a crash looks so)
    first.sign_on()
    _refused_as_superseded(second.ask())
    assert first.ask().status_code in (200, 204)


def _ask_in_background(w: ScriptedWorker, answer: list[httpx.Response]) -> threading.Thread:
    """A task request waiting up to 20 s; its answer lands in `answer`."""
    waiting = threading.Thread(target=lambda: answer.append(w.ask(wait=20)))
    waiting.start()
    time.sleep(1.0)  # it waits at the Manager by now
    return waiting


def test_an_earlier_process_waiting_for_a_task_is_let_go_when_another_signs_on(
    farm: tuple[ServerProcess, ManagerProcess], pair: Pair
) -> None:
    server, _mgr = farm
    _registered, first, second = pair
    first.sign_on()
    answer: list[httpx.Response] = []
    waiting = _ask_in_background(first, answer)
    second.sign_on()
    waiting.join(10)
    assert answer and answer[0].status_code == 204, "the earlier process's wait was not ended"
    # a job submitted now goes to the process signed on last, not to the one that was waiting
    submit(server, exec_job("after", frames="1"))
    assert second.next_task() is not None


def test_a_malformed_instance_is_a_422_naming_the_header_and_none_is_an_older_worker(pair: Pair) -> None:
    registered, _first, second = pair
    registered.sign_on()
    for bad in (b"", b"x" * 65, b"a b", b"\xe9", b"../x"):
        r = registered.http.post("/heartbeat", json={"status": "awake"}, headers={HEADER.encode(): bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == HEADER.lower()
    # a worker that sends none (an older one, a script) is answered as before, whoever signed on last
    second.sign_on()
    assert registered.heartbeat().status_code == 200


def test_a_sign_on_the_manager_refuses_takes_nothing_from_the_running_process(pair: Pair) -> None:
    _registered, first, second = pair
    first.sign_on()
    r = second.http.post("/sign-on", json={"name": "w", "platform": "linux", "task_types": "not a list"})
    assert r.status_code == 422, r.text
    assert first.heartbeat().status_code == 200, "a refused sign-on took the identity"
    _refused_as_superseded(second.heartbeat())


def test_a_task_set_aside_for_the_earlier_process_during_the_sign_on_goes_to_the_later_one(
    farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory, pair: Pair
) -> None:
    """The sign-on itself can feed the earlier process's waiting request (the newer process offers a task type
    the older did not, and such a task waits at the Manager): that request must not come back with the task."""
    server, mgr = farm
    busy = new_worker(mgr, "busy")  # an exec worker busy with one task, so the job's others wait at the Manager
    _registered, first, second = pair
    first.task_types, second.task_types = ["misc"], ["exec", "misc"]
    busy.sign_on()
    first.sign_on()
    job = submit(server, exec_job("waits-for-exec", frames="1-4"))
    assert busy.next_task() is not None
    answer: list[httpx.Response] = []
    waiting = _ask_in_background(first, answer)
    second.sign_on()
    waiting.join(10)
    assert answer, "the earlier process's request did not end"
    _refused_as_superseded(answer[0])  # not the task the sign-on set aside for it
    task = second.next_task(wait=5)
    assert task is not None and task["job_id"] == job["id"]


def test_a_restarted_manager_still_answers_the_process_that_signed_on_last(
    farm: tuple[ServerProcess, ManagerProcess], pair: Pair
) -> None:
    _server, mgr = farm
    _registered, first, second = pair
    first.sign_on()
    second.sign_on()
    mgr.stop()
    mgr.start()
    # the earlier process calling first after the restart does not get the identity back
    _refused_as_superseded(first.heartbeat())
    assert second.heartbeat().status_code == 200


def test_signing_on_in_a_loop_from_two_processes_logs_a_line_a_minute(
    farm: tuple[ServerProcess, ManagerProcess], pair: Pair
) -> None:
    _server, mgr = farm
    _registered, first, second = pair
    for _ in range(50):
        first.sign_on()
        second.sign_on()
    lines = [line for line in mgr.log_text().splitlines() if "signed on from" in line]
    assert len(lines) == 1, lines


def test_a_worker_gets_a_409_for_another_workers_task_even_with_seqs_it_already_sent(
    farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory
) -> None:
    """Seqs are per worker, so one taken from another worker's task looks like a repeat: it must still be a 409
    naming the task as not this worker's, not a 200 `last_seq` that hides it. The worker that runs the task still
    gets a 200 for a batch it sends again (its answer lost), after the task is done too."""
    server, mgr = farm
    a, c = new_worker(mgr, "a"), new_worker(mgr, "c")
    a.sign_on()
    c.sign_on()
    submit(server, exec_job("owned", frames="1-2"))
    ta, tc = a.next_task(), c.next_task()
    assert ta is not None and tc is not None
    assert a.send(ta["id"], [a.update(handout=ta["handout"], status="active")]).status_code == 200
    r = c.send(tc["id"], [c.update(handout=tc["handout"], log_lines=[f"c {i}"]) for i in range(50)])
    assert r.status_code == 200 and r.json()["last_seq"] == 50
    for seq in (5, 50, 60):
        inject = [{"seq": seq, "handout": ta["handout"], "status": "failed", "log_lines": ["C-INJECT"]}]
        for r in (c.send(ta["id"], inject), c.ask(finished=(ta["id"], inject))):
            assert r.status_code == 409, (seq, r.text)
            assert "not assigned to this worker" in r.json()["detail"]
    # a's task is untouched: a finishes it, and sends that batch again as if the answer had been lost
    done = [a.update(handout=ta["handout"], log_lines=["a line"]), a.update(handout=ta["handout"], status="completed")]
    for _ in range(2):
        r = a.send(ta["id"], done)
        assert r.status_code == 200 and r.json()["last_seq"] == done[-1]["seq"], r.text
    assert a.ask(finished=(ta["id"], done)).status_code == 204, "a repeat riding on a task request was refused"
    log = httpx.get(f"{mgr.url}/api/v1/tasks/{ta['id']}/log", headers=server.headers(), timeout=30).text
    assert "a line" in log and "C-INJECT" not in log

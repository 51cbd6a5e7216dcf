"""A wrangler's changes at the Manager, on a real SQLite file: numbered status requests taken once and done
when the worker leaves or comes back, edited tags kept across sign-ons and restarts, forgetting a worker."""

from __future__ import annotations

from pathlib import Path

from services.manager.core import ManagerCore
from services.manager.store.db import connect
from services.protocol.link import WorkerInstruction, WorkerTags
from services.protocol.platforms import Platform
from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import Heartbeat, SignOnRequest
from tests.unit.manager.test_core import claimed, make_core, take, worker


def _restart(core: ManagerCore, worker_id: str, request_id: int) -> None:
    core.workers.apply_instructions(
        [WorkerInstruction(worker_id=worker_id, status=WorkerStatusRequest.RESTART, lazy=False, request_id=request_id)]
    )


def test_a_numbered_request_is_taken_once_and_is_done_when_the_worker_comes_back(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w1")
    core.workers.dirty.clear()
    _restart(core, w.id, 1)
    assert (w.status_requested, w.lazy, w.request_id) == (WorkerStatusRequest.RESTART, False, 1)
    assert w.id in core.workers.dirty, "the Server hears that the Manager holds it"
    answer = core.heartbeat(w, Heartbeat(status=WorkerStatus.AWAKE))
    assert answer.status_requested == WorkerStatusRequest.RESTART and answer.lazy is False
    # the worker restarts: it signs off, and its sign-on does not carry the request again (no restart loop)
    core.sign_off(w)
    assert w.status_requested is None
    _restart(core, w.id, 1)  # the Server repeats it until it sees the report: not taken again
    assert w.status_requested is None
    answer = core.sign_on(w, SignOnRequest(name="w1", platform=Platform.LINUX, task_types=["exec"]))
    assert answer.status_requested is None
    [report] = [r for r in core.workers.reports(everything=True) if r.id == w.id]
    assert (report.status_requested, report.request_id) == (None, 1)
    # a restarted Manager remembers which request it took
    again = ManagerCore(connect(tmp_path / "m.sqlite"), core.config)
    _restart(again, w.id, 1)
    assert again.workers[w.id].status_requested is None
    _restart(again, w.id, 2)  # a new request is taken
    assert again.workers[w.id].status_requested == WorkerStatusRequest.RESTART


def test_a_restart_asked_of_a_worker_that_never_signs_off_is_done_at_its_next_sign_on(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w1")
    _restart(core, w.id, 3)
    answer = core.sign_on(w, SignOnRequest(name="w1", platform=Platform.LINUX, task_types=["exec"]))
    assert answer.status_requested is None and w.request_id == 3


def test_edited_tags_replace_the_workers_own_and_survive_sign_on_and_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w1", tags=("cpu",))
    core.add_claimed([claimed(1, job_tags=["gpu"])])
    assert take(core, w) is None
    core.workers.apply_tags([WorkerTags(worker_id=w.id, tags=["gpu"])])
    assert w.tags == frozenset({"gpu"})
    assert core.claim_request() is not None and core.claim_request().tags == ["gpu"]  # type: ignore[union-attr]
    assert take(core, w) == 1
    core.sign_on(w, SignOnRequest(name="w1", platform=Platform.LINUX, task_types=["exec"], tags=["cpu"]))
    assert w.tags == frozenset({"gpu"})
    again = ManagerCore(connect(tmp_path / "m.sqlite"), core.config)
    assert again.workers[w.id].tags == frozenset({"gpu"})
    [report] = [r for r in again.workers.reports(everything=True) if r.id == w.id]
    assert report.tags == ["gpu"]


def test_forgetting_a_worker_drops_its_record_credentials_and_schedule(tmp_path: Path) -> None:
    from services.protocol.farm import SleepSchedule

    core = make_core(tmp_path)
    w = worker(core, "w1")
    keep = worker(core, "w2")
    core.sleep.set(w.id, SleepSchedule(active=True))
    core.blocklist[(1, w.id, "exec")] = 3
    core.sign_off(w)
    core.forget_workers([w.id, "unknown"])
    assert core.workers.get(w.id) is None and core.workers.get(keep.id) is keep
    assert w.id not in core.sleep.schedules and not core.blocklist
    assert all(r.id != w.id for r in core.workers.reports(everything=True))
    again = ManagerCore(connect(tmp_path / "m.sqlite"), core.config)
    assert again.workers.get(w.id) is None and again.workers.get(keep.id) is not None
    assert w.id not in again.sleep.schedules

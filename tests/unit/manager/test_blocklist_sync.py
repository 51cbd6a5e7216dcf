"""The Manager's blocklist as reported to the Server: changed entries once, all with a renewal, put back when
a batch did not go, entries cleared by a wrangler forgotten (and reported gone), across a restart."""

from __future__ import annotations

from pathlib import Path

from services.manager import blocklist_sync, scheduler
from services.protocol.failures import Unblock
from tests.unit.manager.test_core import claimed, make_core, report, take, worker


def test_changed_entries_are_reported_once_and_cleared_ones_are_forgotten(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=2)
    core.add_claimed([claimed(1, max_task_failures=5), claimed(2, index=1, max_task_failures=5)])
    a, b = worker(core, "a"), worker(core, "b")
    assert blocklist_sync.take_reports(core, everything=False)[0] == []
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")
    reports, complete, keys = blocklist_sync.take_reports(core, everything=False)
    assert [(r.job_id, r.worker_id, r.worker_name, r.task_type, r.failures, r.threshold) for r in reports] == [
        (1, a.id, "a", "exec", 1, 2)
    ]
    assert not complete and blocklist_sync.take_reports(core, everything=False)[0] == []  # reported once
    blocklist_sync.put_back(core, keys)  # that batch never reached the Server
    assert len(blocklist_sync.take_reports(core, everything=False)[0]) == 1
    assert take(core, a) == 2
    report(core, a, 2, "active", "failed")  # a's second failure: blocklisted
    assert take(core, a) is None
    assert not scheduler.can_run(core.tasks[1], a, core.blocklist, 2)
    everything, complete, _ = blocklist_sync.take_reports(core, everything=True)
    assert complete and [(r.worker_id, r.failures) for r in everything] == [(a.id, 2)]

    blocklist_sync.unblock(core, [Unblock(job_id=1, worker_id=a.id, task_type="exec")])
    assert core.blocklist == {}
    gone, _, _ = blocklist_sync.take_reports(core, everything=False)
    assert [(r.worker_id, r.failures) for r in gone] == [(a.id, 0)]  # reported as gone
    assert scheduler.can_run(core.tasks[1], a, core.blocklist, 2)  # a may run the job's tasks again
    assert make_core(tmp_path, blocklist_threshold=2).blocklist == {}  # gone from the store too
    assert b.id not in {k[1] for k in core.blocklist}


def test_a_restarted_manager_reports_every_entry_it_has(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=1)
    core.add_claimed([claimed(1, max_task_failures=5)])
    a = worker(core, "a")
    worker(core, "b")
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")
    again = make_core(tmp_path, blocklist_threshold=1)
    reports, _, _ = blocklist_sync.take_reports(again, everything=False)
    assert [(r.job_id, r.worker_id, r.failures) for r in reports] == [(1, a.id, 1)]

"""The ETA and the worker match shared by the Server and the app (services/protocol/timing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.protocol import timing
from services.protocol.farm import Worker
from services.protocol.jobs import Job

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def job(**kw: Any) -> Job:
    fields: dict[str, Any] = dict(
        id=1, name="j", type="exec", settings={}, priority=50, submitter="a", tags=[], manager_id=None,
        depends_on=[], max_task_failures=3, on_task_failure="fail-job", status="active", activity="",
        created=NOW, updated=NOW, tasks_total=10, tasks_completed=4, tasks_failed=0, tasks_active=2,
        task_types=["exec"], tasks_timed=4, task_seconds_mean=2.0, tasks_running=0,
    )  # fmt: skip
    fields.update(kw)
    return Job.model_validate(fields)


def worker(**kw: Any) -> Worker:
    fields: dict[str, Any] = dict(
        id="w", name="w", manager_id=1, platform="linux", task_types=["exec"], tags=[], software={},
        status="awake", status_requested=None, current_task_id=None, last_seen=NOW, utilisation=None,
    )  # fmt: skip
    fields.update(kw)
    return Worker.model_validate(fields)


def test_estimate_spreads_the_work_left_over_the_workers() -> None:
    assert timing.estimate(left=12, running=0, running_elapsed=0, mean=0.5, workers=2) == pytest.approx(3.0)
    # two running for 0.2 s each: they need 0.3 s more each
    assert timing.estimate(left=12, running=2, running_elapsed=0.4, mean=0.5, workers=2) == pytest.approx(2.8)
    # overrunning tasks count as about to end, never as negative work
    assert timing.estimate(left=2, running=2, running_elapsed=9.0, mean=0.5, workers=2) == 0.0
    # more workers than tasks: only as many as there are tasks help
    assert timing.estimate(left=2, running=0, running_elapsed=0, mean=3.0, workers=10) == pytest.approx(3.0)
    assert timing.estimate(left=0, running=0, running_elapsed=0, mean=None, workers=0) == 0.0
    assert timing.estimate(left=5, running=0, running_elapsed=0, mean=None, workers=2) is None
    assert timing.estimate(left=5, running=0, running_elapsed=0, mean=1.0, workers=0) is None


def test_an_estimate_past_a_century_is_none_rather_than_a_date_past_the_calendars_end() -> None:
    """A worker clock at 1970 made a mean of decades: `now + eta` overflowed, and GET /jobs answered 500."""
    century = timing.ETA_MAX
    assert timing.estimate(left=1, running=0, running_elapsed=0, mean=century, workers=1) == century
    assert timing.estimate(left=300, running=0, running_elapsed=0, mean=1.8e9, workers=1) is None
    assert timing.estimate(left=2, running=0, running_elapsed=0, mean=float("inf"), workers=1) is None
    assert timing.job_estimate(job(task_seconds_mean=1e300), 1, NOW) is None


def test_job_estimate_takes_the_running_tasks_elapsed_from_their_mean_start() -> None:
    j = job(tasks_running=2, running_since_mean=NOW - timedelta(seconds=1.5))
    # 6 left, 2 running 1.5 s each: 4 × 2 + 2 × 0.5 = 9 s over 3 workers
    assert timing.job_estimate(j, 3, NOW) == pytest.approx(3.0)
    assert timing.job_estimate(job(status="paused"), 3, NOW) is None
    assert timing.job_estimate(job(status="completed"), 3, NOW) is None


def test_worker_can_run_needs_awake_available_manager_tags_and_a_task_type() -> None:
    j = job(tags=["gpu"], manager_id=1)
    assert timing.worker_can_run(j, worker(tags=["gpu", "big"]))
    assert not timing.worker_can_run(j, worker(tags=[]))
    assert not timing.worker_can_run(j, worker(tags=["gpu"], manager_id=2))
    assert not timing.worker_can_run(j, worker(tags=["gpu"], status="asleep"))
    assert not timing.worker_can_run(j, worker(tags=["gpu"], unavailable="user-active"))
    assert not timing.worker_can_run(j, worker(tags=["gpu"], task_types=["blender"]))
    assert timing.worker_can_run(job(task_types=[]), worker(task_types=["blender"]))  # types unknown: any
    assert timing.usable_workers(job(), [worker(), worker(status="offline"), worker()]) == 2


def test_elapsed_runs_to_now_then_stops_at_the_last_end() -> None:
    start = NOW - timedelta(seconds=100)
    assert timing.elapsed(job(started=None), NOW) is None
    assert timing.elapsed(job(started=start), NOW) == pytest.approx(100)
    done = job(status="completed", started=start, finished=start + timedelta(seconds=40))
    assert timing.elapsed(done, NOW) == pytest.approx(40)

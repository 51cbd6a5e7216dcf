"""The ETA on a real farm (Server, Manager, two workers as processes): for a job of equal `sleep` tasks, the
estimate made once a quarter of it has run is within 15 % of when it really ends (docs/api.md "Time")."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.farm import local_farm, need_programs

pytestmark = pytest.mark.timeout(240)

TASKS = 16
SECONDS = 1.0  # long beside the gap between tasks on a loaded machine (the estimate counts render time)
WORKERS = 2
TOLERANCE = 0.15


def _at(s: str) -> datetime:
    return datetime.fromisoformat(s)


def test_eta_after_a_quarter_is_within_15_percent_of_the_real_end(tmp_path: Path) -> None:
    need_programs("sleep")
    with local_farm(tmp_path / "farm", workers=WORKERS) as farm:
        farm.wait_for(lambda: len(farm.server.get("/workers").json()) == WORKERS, 60, lambda: "workers signing on")
        job = farm.submit(
            {
                "name": "equal sleepers",
                "type": "exec",
                "settings": {"command": ["sleep", str(SECONDS)], "frames": f"1-{TASKS}", "chunk_size": 1},
            }
        )
        deadline = time.monotonic() + 120
        while True:  # the first answer after a quarter of the tasks completed
            seen = farm.server.get(f"/jobs/{job['id']}", params={"tasks_limit": 0}).json()
            if seen["tasks_completed"] >= TASKS // 4:
                break
            assert time.monotonic() < deadline, f"a quarter never completed: {seen['status']}"
            time.sleep(0.02)
        assert seen["tasks_completed"] < TASKS, "the job ended before the estimate could be taken"
        assert seen["eta_workers"] == WORKERS
        assert seen["task_seconds_mean"] == pytest.approx(SECONDS, rel=0.5)
        estimate_made = _at(seen["eta"]) - timedelta(seconds=seen["eta_seconds"])
        done = farm.wait_job(job["id"], {"completed"}, timeout=120)
        real_left = (_at(done["finished"]) - estimate_made).total_seconds()
        error = abs(seen["eta_seconds"] - real_left) / real_left
        print(
            f"ETA after {seen['tasks_completed']}/{TASKS} done: {seen['eta_seconds']:.2f} s, really "
            f"{real_left:.2f} s ({error:.0%} off; mean task {seen['task_seconds_mean']:.3f} s)"
        )
        assert error <= TOLERANCE
        # the figures of the finished job: all timed, the mean near the sleep, the elapsed time to its last end
        assert done["tasks_timed"] == TASKS and done["eta_seconds"] is None
        assert SECONDS <= done["task_seconds_max"] < SECONDS + 2
        assert done["elapsed_seconds"] == pytest.approx(
            (_at(done["finished"]) - _at(done["started"])).total_seconds(), abs=1e-3
        )
        assert done["elapsed_seconds"] >= TASKS / WORKERS * SECONDS

"""On the all-in-one farm, an idle worker holds a spare process (runners/spare.py): the next task's command runs
in it, a new one is held once the worker is idle again, and a worker put to sleep holds none."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest

from services.worker import task_policy
from services.worker.runners import gates, thread_spawn
from tests.support.farm import FarmClient, local_farm

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not thread_spawn.usable(task_policy.TaskPolicy())
        or not (Path(os.path.realpath(str(shutil.which("sh")))).name == "dash" or gates.keep_environment()),
        reason="needs Linux, util-linux's setpriv and an `sh` that execs with the environment it was given",
    ),
]


def _spares(farm: FarmClient) -> list[int]:
    """The worker's held spare processes (its children waiting in the spare's gate)."""
    found = []
    for worker in farm.farm.workers:
        assert worker.proc is not None
        for child in psutil.Process(worker.proc.pid).children():
            try:
                if "tablao-spare" in child.cmdline():
                    found.append(child.pid)
            except psutil.Error:
                pass
    return found


def _one_spare(farm: FarmClient) -> int:
    return int(farm.wait_for(lambda: (s := _spares(farm)) and len(s) == 1 and s[0], 60, lambda: "no spare held"))


def _run_one(farm: FarmClient, out: Path, frame: int, **settings: object) -> int:
    job = farm.submit({
        "name": f"pid {frame}", "type": "exec",
        "settings": {"command": ["bash", "-c", f"echo $$ > {out}/{frame}"], "frames": str(frame), "chunk_size": 1,
                     **settings},
    })  # fmt: skip
    farm.wait_job(job["id"], {"completed"}, 60)
    return int((out / str(frame)).read_text())


def test_an_idle_workers_next_task_runs_in_its_spare_and_a_sleeping_worker_holds_none(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with local_farm(tmp_path / "farm", workers=1) as farm:
        # the farm's output roots are written with its path variables, which the sign-on told the worker
        first = _one_spare(farm)
        assert _run_one(farm, out, 1) == first  # the task's command became that process
        held = _one_spare(farm)
        assert held != first and _run_one(farm, out, 2) == held
        again = _one_spare(farm)
        assert again != held and _run_one(farm, out, 3) == again  # a new one, held as the worker waits again

        worker = farm.wait_for(lambda: farm.server.get("/workers").json(), 30)[0]
        r = farm.server.post(f"/workers/{worker['id']}/status-request", json={"status": "asleep"})
        assert r.status_code == 200, r.text
        farm.wait_for(lambda: not _spares(farm), 30, lambda: "a sleeping worker still holds a spare")
        r = farm.server.post(f"/workers/{worker['id']}/status-request", json={"status": "awake"})
        assert r.status_code == 200, r.text
        woke = _one_spare(farm)  # awake and idle again
        assert _run_one(farm, out, 4) == woke

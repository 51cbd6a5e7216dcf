"""The tray on a real X server: from the user's first input to the render process gone, and the idle cost.

- 20 returns: the tray ("only when I'm away" at 1 s) renders a long `sleep` task; `xdotool mousemove` is the
  user coming back; the figure is the time from that input to the render's process no longer existing.
- Idle: the tray and its worker (their whole process tree) with nothing to do, for 20 s: RSS and CPU.
Run with `make bench`; not part of `make test`. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_tray_x11 import lines, move_mouse, need_x_tools, running_pids, submit, tray
from tests.support.farm import local_farm
from tests.support.xserver import XServer

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

RETURNS = 20
IDLE_SECONDS = 20.0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_input_to_render_gone_and_idle_cost(tmp_path: Path) -> None:
    need_x_tools()
    marks = tmp_path / "marks.txt"
    with (
        XServer(tmp_path, with_tray=True) as x,
        local_farm(tmp_path / "farm", workers=0) as farm,
        tray(x, farm, tmp_path, "--away-after", "1") as proc,
    ):
        # idle first: no jobs yet, the worker long-polls and the tray ticks
        farm.wait_for(lambda: len(tree(proc.pid)) >= 2 and (tmp_path / "tray" / "worker.log").exists(), 60)
        time.sleep(5)
        procs = tree(proc.pid)
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        t0 = time.monotonic()
        time.sleep(IDLE_SECONDS)
        cpu1 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        wall = time.monotonic() - t0
        rss = sum(p.memory_info().rss for p in procs) / 2**20
        cpu_percent = 100.0 * (cpu1 - cpu0) / wall
        print(f"\nidle tray + worker: {len(procs)} processes, RSS {rss:.0f} MB, CPU {cpu_percent:.2f} % of one core")

        submit(farm, marks, f"1-{RETURNS + 2}")  # each task would sleep TASK_SECONDS; none is let finish
        gone: list[float] = []
        for i in range(RETURNS):
            pids = farm.wait_for(lambda: running_pids(marks), 60, lambda: "a render to start")
            first = time.monotonic()
            move_mouse(x, i)
            while any(alive(p) for p in pids):
                time.sleep(0.01)
            gone.append(time.monotonic() - first)
        starts = sum(1 for ln in lines(marks) if ln[0] == "start")
    gone.sort()
    p50 = statistics.median(gone)
    p99 = gone[min(len(gone) - 1, round(0.99 * (len(gone) - 1)))]
    print(f"input -> render gone over {len(gone)} returns: p50 {p50:.2f} s, p99 {p99:.2f} s, max {gone[-1]:.2f} s"
          f" ({starts} renders started)")  # fmt: skip
    assert p50 < 1.0 and p99 < 2.0
    assert rss < 150 and cpu_percent < 1.0

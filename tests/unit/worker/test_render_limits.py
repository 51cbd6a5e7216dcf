"""Render limits reach the real processes the runner starts: priority, thread variables, CPU affinity."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psutil
import pytest

from services.worker import render_limits
from services.worker.render_limits import RenderLimits
from services.worker.runners.process import run_process

pytestmark = pytest.mark.usefixtures("spawn_way")

PROBE = (
    "import os, psutil; p = psutil.Process(); "
    "print(os.nice(0), os.environ.get('OMP_NUM_THREADS'), len(p.cpu_affinity()))"
)


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    render_limits.configure(RenderLimits())


async def _probe() -> list[str]:
    lines: list[str] = []
    assert await run_process([sys.executable, "-c", PROBE], lines.append) == 0
    return lines[-1].split()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX nice levels")
async def test_defaults_change_nothing_and_limits_apply() -> None:
    base_nice = psutil.Process().nice()
    cpus = len(psutil.Process().cpu_affinity() or [])
    nice, threads, affinity = await _probe()
    assert (int(nice), threads, int(affinity)) == (base_nice, "None", cpus)
    render_limits.configure(RenderLimits(threads=1, low_priority=True))
    nice, threads, affinity = await _probe()
    assert int(nice) == min(19, base_nice + render_limits.NICE_LOW)
    assert threads == "1"
    assert int(affinity) == 1


def test_bad_thread_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="within"):
        RenderLimits(threads=0)

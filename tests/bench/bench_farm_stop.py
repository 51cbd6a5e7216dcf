"""How fast the local farm stops: idle and rendering, on SIGINT, SIGTERM and SIGKILL of `tablao all-in-one`.

Run with `make bench` (or `pytest -m bench -s tests/bench/bench_farm_stop.py`); figures are printed and
recorded in docs/benchmarks.md. Goals (issue 17): an idle farm and any single service within 1 s of SIGINT or
SIGTERM, a rendering one within 2 s (its tasks requeued); after SIGKILL every child gone within 1 s.
"""

from __future__ import annotations

import signal
import statistics
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.allinone import AllInOne, alive

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
RUNS = 3


def _gone_times(procs: list[psutil.Process], names: dict[int, str], within: float = 20) -> dict[str, float]:
    """Seconds from now until each process is gone, by its role (all-in-one, server, manager, local-N)."""
    start = time.monotonic()
    times: dict[str, float] = {}
    while len(times) < len(procs) and time.monotonic() - start < within:
        for p in procs:
            if names[p.pid] not in times and not alive([p]):
                times[names[p.pid]] = time.monotonic() - start
        time.sleep(0.005)
    return times


def _role(p: psutil.Process) -> str:
    cmd = p.cmdline()
    if "all-in-one" in cmd:
        return "all-in-one"
    for role in ("server", "manager"):
        if role in cmd:
            return role
    if "worker" in cmd:
        return cmd[cmd.index("--name") + 1] if "--name" in cmd else "worker"
    return f"{p.name()} {p.pid}"  # a task's program


def _render(farm: AllInOne, tasks: int) -> None:
    token = (farm.data_dir / "server" / "admin.token").read_text().strip()
    body = {"name": "sleepers", "type": "exec", "settings": {"command": ["sleep", "120"], "frames": f"1-{tasks}"}}
    r = httpx.post(f"http://127.0.0.1:{farm.port}/api/v1/jobs", json=body,
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([c for c in psutil.Process(farm.proc.pid).children(recursive=True) if c.name() == "sleep"]) >= tasks:  # type: ignore[union-attr]
            return
        time.sleep(0.1)
    raise AssertionError("the tasks did not start")


def _one(tmp: Path, sig: signal.Signals, rendering: bool) -> dict[str, float]:
    farm = AllInOne(tmp, workers=2).start()
    try:
        family = farm.wait_running()
        time.sleep(1.0)
        if rendering:
            _render(farm, 2)
        everything = [psutil.Process(farm.proc.pid), *psutil.Process(farm.proc.pid).children(recursive=True)]  # type: ignore[union-attr]
        names = {p.pid: _role(p) for p in everything}
        farm.signal(sig)
        times = _gone_times(everything, names)
        assert len(times) == len(everything), f"left running: {set(map(_role, family)) - set(times)}"
        return times
    finally:
        farm.close()


@pytest.mark.parametrize(
    ("what", "sig", "rendering"),
    [
        ("idle, SIGINT", signal.SIGINT, False),
        ("idle, SIGTERM", signal.SIGTERM, False),
        ("rendering 2 tasks, SIGTERM", signal.SIGTERM, True),
        ("idle, SIGKILL of the all-in-one", signal.SIGKILL, False),
        ("rendering 2 tasks, SIGKILL of the all-in-one", signal.SIGKILL, True),
    ],
)
def test_stop_times(tmp_path: Path, what: str, sig: signal.Signals, rendering: bool) -> None:
    runs = [_one(tmp_path / f"farm-{i}", sig, rendering) for i in range(RUNS)]
    total = [max(r.values()) for r in runs]
    print(f"\n{what}: everything gone after {', '.join(f'{t:.2f}' for t in total)} s "
          f"(median {statistics.median(total):.2f} s of {RUNS})")  # fmt: skip
    for role in sorted(runs[0]):
        if role != "sleep":
            print(
                f"  {role:<12} gone after {statistics.median(r.get(role, float('nan')) for r in runs):.2f} s (median)"
            )

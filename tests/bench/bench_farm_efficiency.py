"""Farm efficiency on one machine: 1,000 `sleep 0.05` tasks on 4 local workers, and idle-worker latency.

Each task runs `bash -c` around `sleep 0.05` and writes when the sleep began and ended, and the worker's pid, so
the figures come from the commands themselves rather than from any component's bookkeeping:
- efficiency = total sleep time / (workers × wall time from the first start to the last end), and the same runs
  measured as peerbench.sh measures Celery: 50 ms per task / (workers × time from just before the submit to the
  last end), which also counts the sleep's own start as lost (`make bench-peers` runs this very script under
  Celery and compares the two measures like for like);
- the gap on a worker between one task's end and its next task's start (p50, p99);
- the latency from a task becoming runnable (its job submitted) to its command starting on an idle worker,
  from the submit's answer (what a client sees) and from the job's commit (its job-created event's time, taken
  just before the commit, read back from the event stream after the runs so that reading does not load the farm).
Run with `make bench`; not part of `make test`. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import statistics
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tests.bench.results import record
from tests.support.farm import FarmClient, local_farm

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

# for A/B runs in one tree, e.g. TABLAO_BENCH_WORKER_ARGS=--no-prefetch (or --no-confine)
EXTRA_WORKER_ARGS = tuple(os.environ.get("TABLAO_BENCH_WORKER_ARGS", "").split())

# bash's $EPOCHREALTIME reads the clock without starting a process, so the measurement adds no fork to the task
SCRIPT = 's=$EPOCHREALTIME; sleep 0.05; e=$EPOCHREALTIME; echo "$s $e $PPID" > {out}/{{frame}}'


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def test_efficiency_of_1000_sleep_tasks_on_4_workers(tmp_path: Path) -> None:
    out = tmp_path / "times"
    out.mkdir()
    with local_farm(tmp_path / "farm", workers=4, worker_args=("--poll-wait", "10", *EXTRA_WORKER_ARGS)) as farm:
        time.sleep(3)  # let the workers sign on
        cpu_before = cpu_seconds(farm)
        submitted = time.time()
        farm.submit({
            "name": "sleep 0.05 x 1000", "type": "exec",
            "settings": {"command": ["bash", "-c", SCRIPT.format(out=out)], "frames": "1-1000", "chunk_size": 1},
        })  # fmt: skip
        farm.wait_for(lambda: len(list(out.iterdir())) == 1000, 600, lambda: f"{len(list(out.iterdir()))} done")
        rss = {w.name: psutil.Process(w.proc.pid).memory_info().rss / 2**20 for w in farm.farm.workers if w.proc}
        cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in cpu_seconds(farm).items()}
    rows = [f.read_text().split() for f in out.iterdir()]
    spans = [(float(s), float(e), pid) for s, e, pid in rows]
    first = min(s for s, _, _ in spans)
    last = max(e for _, e, _ in spans)
    busy = sum(e - s for s, e, _ in spans)
    workers = len({pid for _, _, pid in spans})
    efficiency = busy / (4 * (last - first))
    as_celery = len(spans) * 0.05 / (4 * (last - submitted))
    gaps: list[float] = []
    by_worker: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s, e, pid in spans:
        by_worker[pid].append((s, e))
    for runs in by_worker.values():
        runs.sort()
        gaps += [(b[0] - a[1]) * 1000 for a, b in itertools.pairwise(runs)]
    print(
        f"\n1,000 sleep-0.05 tasks on 4 workers ({workers} took part): wall {last - first:.1f} s, "
        f"efficiency {efficiency:.3f}; gap between tasks on a worker p50 {pct(gaps, 0.5):.1f} ms, "
        f"p99 {pct(gaps, 0.99):.1f} ms; mean sleep as bash timed it {busy / len(spans) * 1000:.2f} ms; "
        f"50 ms per task / (4 × time from the submit to the last end) {as_celery:.3f}; "
        f"worker RSS after the run {', '.join(f'{v:.0f}' for v in rss.values())} MB"
    )
    per_task = {name: spent * 1000 / 1000 for name, spent in cpu.items()}  # ms of CPU per task (1,000 tasks)
    print(
        "CPU per task (the farm's own processes, not the tasks'): "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_task.items())
        + f"; all {sum(per_task.values()):.2f} ms"
    )
    record("efficiency", efficiency)
    record("efficiency_nominal", as_celery)
    record("gap_p50_ms", pct(gaps, 0.5))


def cpu_seconds(farm: FarmClient) -> dict[str, float]:
    """User + system CPU seconds so far of the Server, the Manager and the workers (all workers summed)."""
    spent: dict[str, float] = defaultdict(float)
    for child in farm.farm.children:
        if child.proc is None:
            continue
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(child.proc.pid).cpu_times()
            spent["workers" if child in farm.farm.workers else child.name] += times.user + times.system
    return dict(spent)


def test_latency_from_runnable_to_start_on_an_idle_worker(tmp_path: Path) -> None:
    # Three farms, 30 one-task jobs each: a farm's figures move as a whole from one start to the next (which
    # process shares a CPU with which, on a 2-core machine), so one farm alone says little about the code.
    runs: list[tuple[float, float, float, float]] = []  # committed, asked, answered, command started
    per_farm: list[float] = []
    idle_rss: list[float] = []
    for farm_no in range(3):
        out = tmp_path / f"times-{farm_no}"
        out.mkdir()
        with local_farm(
            tmp_path / f"farm-{farm_no}", workers=2, worker_args=("--poll-wait", "30", *EXTRA_WORKER_ARGS)
        ) as farm:
            time.sleep(3)
            idle_rss += [psutil.Process(w.proc.pid).memory_info().rss / 2**20 for w in farm.farm.workers if w.proc]
            these: list[tuple[int, float, float, float]] = []
            for i in range(30):
                time.sleep(0.3)  # every worker idle, its request waiting at the Manager
                asked = time.time()
                job = farm.submit({
                    "name": f"one sleep {i}", "type": "exec",
                    "settings": {"command": ["bash", "-c", SCRIPT.format(out=out)], "frames": str(i + 1),
                                 "chunk_size": 1},
                })  # fmt: skip
                answered = time.time()  # the job's transaction committed between `asked` and `answered`
                done = out / str(i + 1)
                farm.wait_for(done.exists, 30)
                these.append((job["id"], asked, answered, float(done.read_text().split()[0])))
            committed = commit_times(farm, [job_id for job_id, *_ in these])
        runs += [(committed[job_id], asked, answered, started) for job_id, asked, answered, started in these]
        per_farm.append(statistics.median((started - committed[job_id]) * 1000 for job_id, _, _, started in these))
    from_commit = [(started - committed) * 1000 for committed, _, _, started in runs]
    from_answer = [(started - answered) * 1000 for _, _, answered, started in runs]
    from_request = [(started - asked) * 1000 for _, asked, _, started in runs]
    print(
        f"\nrunnable → command started on an idle worker (3 farms × 30 one-task jobs): from the job's commit "
        f"p50 {statistics.median(from_commit):.1f} ms (per farm {', '.join(f'{v:.1f}' for v in per_farm)}), "
        f"p99 {pct(from_commit, 0.99):.1f} ms; from the submit's answer p50 {statistics.median(from_answer):.1f} ms, "
        f"p99 {pct(from_answer, 0.99):.1f} ms; from the submit's request p50 {statistics.median(from_request):.1f} "
        f"ms, p99 {pct(from_request, 0.99):.1f} ms; idle worker RSS {', '.join(f'{v:.0f}' for v in idle_rss)} MB"
    )
    record("latency_from_request_p50_ms", statistics.median(from_request))
    record("latency_from_answer_p50_ms", statistics.median(from_answer))


def commit_times(farm: FarmClient, job_ids: list[int]) -> dict[int, float]:
    """Each job's job-created event time (written in its transaction, just before the commit), as epoch seconds."""
    found: dict[int, float] = {}
    with farm.server.stream("GET", "/events", params={"after": 0}) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            if event["type"] == "job-created" and event["data"]["id"] in job_ids:
                found[event["data"]["id"]] = datetime.fromisoformat(event["time"]).timestamp()
                if len(found) == len(job_ids):
                    return found
    raise AssertionError(f"the event stream ended with {len(found)} of {len(job_ids)} job-created events")

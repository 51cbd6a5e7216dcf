"""`make bench-peers` reads Celery's figures from peerbench.sh's output and hands Celery Tablao's own task script."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench.bench_farm_efficiency import SCRIPT

ROOT = Path(__file__).resolve().parents[2]

# RESULT lines as peerbench.sh printed them on 2026-12-04 (threads and RQ lines left out: they are not compared)
OUTPUT = """\
# host: 2 cpus
RESULT celery prefork c=2 prefetch_multiplier=default=4: noop throughput 930 tasks/s (N=20000, wall 21.50 s)
RESULT celery prefork c=2 prefetch_multiplier=default=4: idle enqueue->start latency median 3.29 ms (min 2.58)
RESULT celery prefork c=2 prefetch_multiplier=1: noop throughput 883 tasks/s (N=20000, wall 22.64 s)
RESULT celery prefork c=2 prefetch_multiplier=1: idle enqueue->start latency median 3.07 ms (min 2.39)
RESULT celery threads c=8 prefetch_multiplier=1: noop throughput 1999 tasks/s (N=20000, wall 10.00 s)
RESULT celery prefork c=4 prefetch_multiplier=default=4: script x1000 command-time efficiency 93.1% nominal \
efficiency 89.6% (mean sleep 51.92 ms, gap p50 3.6 ms, wall 13.94 s, cpu busy 26%)
RESULT celery prefork c=4 prefetch_multiplier=1: script x1000 command-time efficiency 92.5% nominal efficiency \
89.0% (mean sleep 51.97 ms, gap p50 3.9 ms, wall 14.05 s, cpu busy 27%)
RESULT celery prefork c=4 prefetch_multiplier=default=4: bash -c 'sleep 0.05' x1000 efficiency 90.1% (wall 13.87 s)
RESULT celery prefork c=4 prefetch_multiplier=1: bash -c 'sleep 0.05' x1000 efficiency 89.6% (wall 13.95 s)
"""


@pytest.fixture(scope="module")
def bench_peers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "scripts" / "bench_peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_celerys_best_figure_of_each_measure_is_read(bench_peers: ModuleType) -> None:
    assert bench_peers.parse_celery(OUTPUT) == pytest.approx(
        {
            "noop_tasks_per_s": 930.0,  # prefork c=2 only: the threads pool is not the comparison
            "latency_p50_ms": 3.07,
            "efficiency": 0.931,
            "efficiency_nominal": 0.896,
            "efficiency_sleep_only": 0.901,
        }
    )


def test_celery_runs_the_very_script_the_efficiency_benchmark_runs(bench_peers: ModuleType) -> None:
    # Tablao fills in the folder when the job is built and the frame per task; peerbench.sh fills in both
    ours = SCRIPT.format(out="/tmp/times").replace("{frame}", "17")
    theirs = bench_peers.shell_script().replace("{out}", "/tmp/times").replace("{frame}", "17")
    assert theirs == ours
    assert "sleep 0.05" in theirs and theirs.endswith("/tmp/times/17")


def test_a_run_without_the_script_group_is_a_clear_error(bench_peers: ModuleType) -> None:
    without = "\n".join(line for line in OUTPUT.splitlines() if "script x" not in line)
    with pytest.raises(ValueError, match="no Celery script efficiency figure"):
        bench_peers.parse_celery(without)

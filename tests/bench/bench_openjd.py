"""openjd job type: compiling a 100,000-task template, and refusing a trillion-task one.

Run with `make bench` (or `pytest -m bench -s tests/bench/bench_openjd.py`); figures are printed and recorded in
docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from services.server.jobtypes.base import CompileError, JobContext
from services.server.jobtypes.openjd_job import OpenJDJob, OpenJDSettings

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]
CTX = JobContext(1, "bench", "bench", datetime.now(UTC))


def template(frames: str, layers: int) -> dict[str, Any]:
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "bench",
        "steps": [{
            "name": "S",
            "parameterSpace": {"taskParameterDefinitions": [
                {"name": "F", "type": "INT", "range": frames},
                {"name": "L", "type": "STRING", "range": [f"layer{i}" for i in range(layers)]},
            ]},
            "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Task.Param.F}}", "{{Task.Param.L}}"]}}},
        }],
    }  # fmt: skip


def test_compile_100k_tasks() -> None:
    start = time.perf_counter()
    settings = OpenJDSettings.model_validate({"template": template("1-1000", 100)})
    tasks = list(OpenJDJob().compile(CTX, settings))
    seconds = time.perf_counter() - start
    assert len(tasks) == 100_000
    del tasks
    tracemalloc.start()  # a second run for memory: tracing slows it ten-fold
    again = list(OpenJDJob().compile(CTX, settings))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(again) == 100_000
    print(f"\nopenjd: validate + compile 100,000 tasks in {seconds:.2f} s, peak Python memory {peak / 2**20:.0f} MiB")


def test_refuse_a_trillion_tasks() -> None:
    start = time.perf_counter()
    settings = OpenJDSettings.model_validate({"template": template("1-1000000000000", 1)})
    with pytest.raises(CompileError):
        list(OpenJDJob().compile(CTX, settings))
    print(f"\nopenjd: a 10^12-task template refused in {(time.perf_counter() - start) * 1000:.1f} ms")

"""Benchmark: what confining a task costs at its start (scrubbed environment, Landlock ruleset, scratch folder).

Prints the time `task_policy.prepare` takes per process start, and the start-to-exit time of `true` run
confined and unconfined through the process wrapper.
Run with `pytest -m bench -s tests/bench/bench_task_confinement.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

from services.worker import landlock, task_policy
from services.worker.runners.process import run_process

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]
ROUNDS = 50


async def _runs(policy: task_policy.TaskPolicy) -> list[float]:
    task_policy.use_policy(policy)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await run_process(["true"], lambda line: None)
        times.append(time.perf_counter() - start)
    return times


def test_confinement_cost_at_task_start(tmp_path: Path) -> None:
    if landlock.abi_version() < 1:
        pytest.skip("no Landlock on this kernel")
    data = tmp_path / "farm"
    (data / "manager" / "render").mkdir(parents=True)
    roots = (str(data / "manager" / "render"),)
    confined = task_policy.effective_policy(task_policy.TaskPolicy(output_roots=roots, protect=(data,)), data / "w")
    task_policy.use_policy(confined)
    prepare = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        task_policy.prepare(None).close()
        prepare.append(time.perf_counter() - start)
    with_confinement = asyncio.run(_runs(confined))
    without = asyncio.run(_runs(task_policy.TaskPolicy(confine=False)))
    grants = len(task_policy._grants(confined, None, {}))

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"

    print(f"\nLandlock ABI {landlock.abi_version()}, {grants} grants")
    print(f"prepare (environment, ruleset, scratch folder): {ms(prepare)}")
    print(f"`true` through the wrapper, confined:   {ms(with_confinement)}")
    print(f"`true` through the wrapper, unconfined: {ms(without)}")

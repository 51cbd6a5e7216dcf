"""Several Servers on one PostgreSQL database: how fast work submitted at one reaches a claim waiting at another.

Run with `make bench` (or `pytest -m bench -s tests/bench/bench_several_servers.py`); figures are printed and
recorded in docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_postgres_database
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.timeout(900)]

ROUNDS = 100


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_cross_server_wake_up(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        a = ServerProcess(data_dir=tmp_path / "a", database_url=url).start(60)
        b = ServerProcess(data_dir=tmp_path / "b", database_url=url).start(60)
        try:
            token = add_manager(a, "bench")
            link = httpx.Client(base_url=b.url + API + "/manager", headers={"Authorization": f"Bearer {token}"})
            submitter = httpx.Client(base_url=a.url + API, headers=a.headers())
            from_request, from_answer = [], []
            with link, submitter, ThreadPoolExecutor(1) as pool:
                link.timeout = submitter.timeout = httpx.Timeout(30)
                for i in range(ROUNDS):
                    claim = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 20}
                    waiting = pool.submit(link.post, "/claim", json=claim)
                    time.sleep(0.15)  # the claim is waiting at B
                    body = {"name": f"wake {i}", "type": "exec", "settings": {"command": ["true"], "frames": "1"}}
                    sent = time.perf_counter()
                    r = submitter.post("/jobs", json=body)
                    answered = time.perf_counter()
                    assert r.status_code == 201, r.text
                    got = waiting.result(timeout=30)
                    claimed = time.perf_counter()
                    assert len(got.json()["tasks"]) == 1, got.text
                    from_request.append((claimed - sent) * 1000)
                    from_answer.append((claimed - answered) * 1000)
        finally:
            a.stop()
            b.stop()
    print(
        f"\nsubmit at Server A -> claim answered at Server B, {ROUNDS} rounds (PostgreSQL, loopback): "
        f"from the submit's request p50 {statistics.median(from_request):.1f} ms, p99 {pct(from_request, 99):.1f} ms; "
        f"from its answer p50 {statistics.median(from_answer):.1f} ms, p99 {pct(from_answer, 99):.1f} ms"
    )

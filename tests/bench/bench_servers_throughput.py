"""Throughput with one, two and three Servers on one PostgreSQL database, and the CPU each process spends per task.

Run: `.venv/bin/pytest -m bench -s tests/bench/bench_servers_throughput.py` (not part of `make test`). For each
count of Servers: a fresh PostgreSQL database on 127.0.0.1:5432, that many Servers on it, one Manager per
Server, and the same 200 simulated workers (the load generator of bench_farm_throughput.py, spread over the
Managers) through one job of no-op tasks submitted at the first Server. Environment: BENCH_TASKS (20000),
BENCH_WORKERS (200), BENCH_PROCS (load-generator processes, 4), BENCH_SERVERS ("1,2,3").

The CPU per task is measured for each Server and Manager process and for the PostgreSQL backends serving this
run's database (found by the database's name in their process titles); PostgreSQL's shared processes (WAL
writer, checkpointer) serve every database on the machine and are reported apart, as the whole of their use.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.bench import bench_farm_throughput as farm
from tests.support.databases import fresh_postgres_database
from tests.support.manager import API, ManagerProcess, add_manager
from tests.support.services import ServerProcess

pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.timeout(3600)]

SHARED_PG = ("walwriter", "checkpointer", "background writer", "autovacuum", "logical replication", "stats")


class PostgresCpu:
    """CPU of PostgreSQL's processes over a run: the backends of one database, and the shared ones."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.kind: dict[int, str] = {}
        self._started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _look(self) -> None:
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            if p.info["name"] != "postgres" or not p.info["cmdline"] or p.info["cpu_times"] is None:
                continue
            title = " ".join(p.info["cmdline"])
            if f" {self.database} " in f" {title} ":
                kind = "backend"
            elif any(s in title for s in SHARED_PG):
                kind = "shared"
            else:
                continue
            cpu = p.info["cpu_times"].user + p.info["cpu_times"].system
            if p.pid not in self.kind:  # a backend that starts during the run counts from nothing
                self.kind[p.pid] = kind
                self.first[p.pid] = cpu if not self._started else 0.0
            self.last[p.pid] = cpu

    def start(self) -> None:
        self._look()
        self._started = True
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            self._look()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._look()
        out = {"backend": 0.0, "shared": 0.0}
        for pid, kind in self.kind.items():
            out[kind] += self.last[pid] - self.first.get(pid, 0.0)
        return out


def run(tmp: Path, n_servers: int, tasks: int, workers: int, procs: int) -> dict[str, Any]:
    with fresh_postgres_database() as url:
        database = url.rsplit("/", 1)[1]
        servers = [ServerProcess(data_dir=tmp / f"server{i}", database_url=url).start(120) for i in range(n_servers)]
        managers: list[ManagerProcess] = []
        gens = farm.LoadGenerators()
        try:
            for i, s in enumerate(servers):
                token = add_manager(servers[0], f"bench{i}")
                extra = ("--prefetch-margin", "1000")
                managers.append(ManagerProcess(s.url, token, tmp / f"manager{i}", extra_args=extra).start(120))
            h = servers[0].headers()
            body = {"name": "noop", "type": "exec", "settings": {"command": ["true"], "frames": f"1-{tasks}"}}
            r = httpx.post(f"{servers[0].url}{API}/jobs", json=body, headers=h, timeout=600)
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            for i, n in enumerate(farm.shares(workers, procs)):  # generator i serves Manager i % n
                mgr = managers[i % n_servers]
                gens.start(mgr.port, mgr.registration_secret, n, f"g{i}")
            gens.ready()
            pids = {f"server{i}": s.proc.pid for i, s in enumerate(servers) if s.proc}
            pids |= {f"manager{i}": m.proc.pid for i, m in enumerate(managers) if m.proc}
            cpu0 = {k: farm._cpu_seconds(p) for k, p in pids.items()}
            pg = PostgresCpu(database)
            pg.start()
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            gens.go()
            with httpx.Client(base_url=servers[-1].url + API, headers=h, timeout=60) as c:
                while (done := c.get(f"/jobs/{job_id}").json()["tasks_completed"]) < tasks:
                    if time.perf_counter() - t0 > 1800:
                        raise AssertionError(f"not done after 30 min: {done} of {tasks}")
                    time.sleep(0.2)
            elapsed = time.perf_counter() - t0
            # the job's counters against its tasks: lost or doubled counts would show here
            counters = httpx.get(f"{servers[0].url}{API}/jobs/{job_id}", headers=h, timeout=60).json()
            cpu = {k: farm._cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
            pg_cpu = pg.stop()
            load1 = os.getloadavg()[0]
            results = gens.stop()
            lat = sorted(x for res in results for x in res["steady"])
            return {
                "servers": n_servers, "tasks": tasks, "elapsed_s": elapsed, "tasks_per_s": tasks / elapsed,
                "cpu": cpu, "pg_backend_s": pg_cpu["backend"], "pg_shared_s": pg_cpu["shared"],
                "loadgen_s": sum(res["cpu"] for res in results), "done": sum(res["done"] for res in results),
                "ask_p50_ms": statistics.median(lat) * 1000, "load": (load0, load1),
                "counters": {k: counters[k] for k in ("status", "tasks_completed", "tasks_active")},
            }  # fmt: skip
        finally:
            gens.close()
            for m in managers:
                m.stop()
            for s in servers:
                s.stop()


def report(res: dict[str, Any]) -> str:
    t = res["tasks"]
    ms = 1000 / t  # CPU seconds over the run -> ms per task
    servers = [v for k, v in res["cpu"].items() if k.startswith("server")]
    managers = [v for k, v in res["cpu"].items() if k.startswith("manager")]
    total = sum(servers) + sum(managers) + res["pg_backend_s"] + res["pg_shared_s"] + res["loadgen_s"]
    return (
        f"{res['servers']} Server(s): {res['tasks_per_s']:.0f} tasks/s ({t} no-op tasks in {res['elapsed_s']:.1f} s, "
        f"load average {res['load'][0]:.1f} -> {res['load'][1]:.1f}); CPU per task: "
        f"Servers {sum(servers) * ms:.2f} ms (each {', '.join(f'{v * ms:.2f}' for v in servers)}), "
        f"Managers {sum(managers) * ms:.2f} ms, PostgreSQL backends {res['pg_backend_s'] * ms:.2f} ms "
        f"(+ shared processes {res['pg_shared_s'] * ms:.2f} ms), load generator {res['loadgen_s'] * ms:.2f} ms; "
        f"all {total * ms:.2f} ms = {total / res['elapsed_s']:.2f} cores busy; worker answer p50 "
        f"{res['ask_p50_ms']:.0f} ms; the job's counters at the end {res['counters']}"
    )


def test_throughput_with_one_two_and_three_servers(tmp_path: Path) -> None:
    tasks = int(os.environ.get("BENCH_TASKS", "20000"))
    workers = int(os.environ.get("BENCH_WORKERS", "200"))
    procs = int(os.environ.get("BENCH_PROCS", "4"))
    counts = [int(x) for x in os.environ.get("BENCH_SERVERS", "1,2,3").split(",")]
    lines = []
    for n in counts:
        res = run(tmp_path / f"servers{n}", n, tasks, workers, max(procs, n))
        assert res["done"] >= tasks
        lines.append(report(res))
        print("\n" + lines[-1], flush=True)
    print("\n" + "\n".join(lines))

"""Farm throughput: a Server, a Manager and 200 simulated workers on loopback through a job of no-op tasks.

Run: `make bench` (or `.venv/bin/pytest -m bench -s tests/bench/bench_farm_throughput.py`). Environment:
BENCH_TASKS (default 20000), BENCH_TASKS_LARGE (e.g. 200000: a second run with that many tasks),
BENCH_WORKERS (200), BENCH_PROCS (load generator processes, 4), BENCH_PREFETCH (the Manager's prefetch margin, 1000),
BENCH_TASK_MS (how long each simulated task of the second, paced run takes; 150).

The simulated workers speak raw HTTP/1.1 over keep-alive connections (httpx would cost ~1 ms of CPU per
request, more than the Manager spends), one asyncio loop per process. Each one reports its finished task
and asks for the next in one request (`finished` + `finished_task_id`), long-polling when none is there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench.results import record  # noqa: E402 - the load generator runs this file as a script

# ---- the load generator (runs in child processes) -----------------------------------------------------------


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes, auth: str = "") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        if auth:
            head += f"Authorization: Basic {auth}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        data = await self.reader.readexactly(length) if length else b""
        return status, data


async def simulated_worker(
    host: str,
    port: int,
    secret: str,
    name: str,
    go: asyncio.Event,
    stop: asyncio.Event,
    lat: list[float],
    task_seconds: float,
) -> int:
    conn = Conn(host, port)
    body = json.dumps({"registration_secret": secret, "name": name, "platform": "linux"}).encode()
    status, data = await conn.request("POST", "/api/v1/worker/register", body)
    assert status == 200, data
    reg = json.loads(data)
    auth = base64.b64encode(f"{reg['worker_id']}:{reg['secret']}".encode()).decode()
    on = json.dumps({"name": name, "platform": "linux", "task_types": ["exec"]}).encode()
    status, data = await conn.request("POST", "/api/v1/worker/sign-on", on, auth)
    assert status == 200, data
    await go.wait()
    seq = 0
    done = 0
    finished = ""
    while not stop.is_set():
        req = '{"wait_seconds":2' + finished + "}"
        t0 = time.perf_counter()
        status, data = await conn.request("POST", "/api/v1/worker/task", req.encode(), auth)
        finished = ""
        if status == 204:  # waited wait_seconds for nothing: the job is running out, not a latency
            continue
        lat.append(time.perf_counter() - t0)
        assert status == 200, data
        task = json.loads(data)
        if task_seconds:
            await asyncio.sleep(task_seconds)  # "runs" the task
        done += 1
        a = task["handout"]
        finished = (
            f',"finished_task_id":{task["id"]},"finished":{{"updates":['
            f'{{"seq":{seq + 1},"handout":{a},"status":"active"}},'
            f'{{"seq":{seq + 2},"handout":{a},"status":"completed"}}]}}'
        )
        seq += 2
    if finished:  # report the last one
        await conn.request("POST", "/api/v1/worker/task", ('{"wait_seconds":0' + finished + "}").encode(), auth)
    return done


async def loadgen_main(host: str, port: int, secret: str, n: int, prefix: str, task_seconds: float) -> None:
    go, stop = asyncio.Event(), asyncio.Event()
    lats: list[list[float]] = [[] for _ in range(n)]
    workers = [
        asyncio.create_task(simulated_worker(host, port, secret, f"{prefix}-{i}", go, stop, lats[i], task_seconds))
        for i in range(n)
    ]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    assert (await reader.readline()).strip() == b"go"
    go.set()
    await reader.readline()  # "stop"
    stop.set()
    done = await asyncio.gather(*workers)
    cpu = os.times()
    flat = [x for lat in lats for x in lat]
    # each worker's first answer waits for the Manager's first claims after "go": the start, not the steady state
    steady = [x for lat in lats for x in lat[1:]]
    print(json.dumps({"done": sum(done), "lat": flat, "steady": steady, "cpu": cpu.user + cpu.system}), flush=True)


# ---- the benchmark --------------------------------------------------------------------------------------------


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LoadGenerators:
    """The simulated workers' processes for one run: `start` (each serves one Manager, `per` workers), then
    `go` together, `stop` for each one's figures; `close` kills what is left (use it in a `finally`)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, mgr_port: int, secret: str, workers: int, prefix: str, task_seconds: float = 0.0) -> None:
        args = ["127.0.0.1", str(mgr_port), secret, str(workers), prefix, str(task_seconds)]
        self.procs.append(
            subprocess.Popen(
                [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
            )
        )

    def ready(self) -> None:
        for g in self.procs:
            assert g.stdout is not None and g.stdout.readline().strip() == "ready"

    def _say(self, word: str) -> None:
        for g in self.procs:
            assert g.stdin is not None
            g.stdin.write(word + "\n")
            g.stdin.flush()

    def go(self) -> None:
        self._say("go")

    def stop(self) -> list[dict[str, Any]]:
        results = []
        for g in self.procs:
            assert g.stdin is not None and g.stdout is not None
            g.stdin.write("stop\n")
            g.stdin.flush()
            results.append(json.loads(g.stdout.readline()))
            g.wait(30)
        return results

    def close(self) -> None:
        for g in self.procs:
            if g.poll() is None:
                g.kill()
                g.wait()
            for pipe in (g.stdin, g.stdout):
                if pipe is not None:
                    pipe.close()


def shares(workers: int, procs: int) -> list[int]:
    """Workers per generator process, as even as can be."""
    return [workers // procs + (1 if i < workers % procs else 0) for i in range(procs)]


def run_farm(tmp: Path, tasks: int, workers: int, procs: int, prefetch: int, task_ms: int = 0) -> dict[str, Any]:
    import httpx

    from tests.support.manager import API, ManagerProcess, add_manager
    from tests.support.services import ServerProcess

    server = ServerProcess(data_dir=tmp / "server", database_url=None).start()
    mgr = ManagerProcess(
        server.url, add_manager(server, "bench"), tmp / "manager", extra_args=("--prefetch-margin", str(prefetch))
    ).start()
    gens = LoadGenerators()
    try:
        t_submit = time.perf_counter()
        body = {"name": "noop", "type": "exec", "settings": {"command": ["true"], "frames": f"1-{tasks}"}}
        r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=600)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        submit_s = time.perf_counter() - t_submit
        for i, n in enumerate(shares(workers, procs)):
            gens.start(mgr.port, mgr.registration_secret, n, f"g{i}", task_ms / 1000)
        gens.ready()
        cpu0 = {p.pid: _cpu_seconds(p.pid) for p in (server.proc, mgr.proc) if p}
        t0 = time.perf_counter()
        gens.go()
        with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=60) as c:
            while True:
                # the counters only: a page of task summaries five times a second would load the Server it measures
                job = c.get(f"/jobs/{job_id}", params={"tasks_limit": 0}).json()
                if job["tasks_completed"] >= tasks:
                    break
                if time.perf_counter() - t0 > 1800:
                    raise AssertionError(f"not done after 30 min: {job['tasks_completed']} of {tasks}")
                time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        cpu = {pid: _cpu_seconds(pid) - c0 for pid, c0 in cpu0.items()}
        rss = _peak_rss_mb(mgr.proc.pid) if mgr.proc else float("nan")
        results = gens.stop()
        lat = sorted(x for res in results for x in res["lat"])
        steady = sorted(x for res in results for x in res["steady"])
        return {
            "tasks": tasks,
            "workers": workers,
            "task_ms": task_ms,
            "submit_s": submit_s,
            "elapsed_s": elapsed,
            "tasks_per_s": tasks / elapsed,
            "ask_p50_ms": statistics.median(lat) * 1000,
            "ask_p99_ms": lat[int(len(lat) * 0.99)] * 1000,
            "steady_p50_ms": statistics.median(steady) * 1000,
            "steady_p99_ms": steady[int(len(steady) * 0.99)] * 1000,
            "requests": len(lat),  # answered with a task
            "done_by_workers": sum(res["done"] for res in results),
            "manager_peak_rss_mb": rss,
            "server_cpu_s": cpu[server.proc.pid] if server.proc else 0.0,
            "manager_cpu_s": cpu[mgr.proc.pid] if mgr.proc else 0.0,
            "loadgen_cpu_s": sum(res["cpu"] for res in results),
        }
    finally:
        gens.close()
        mgr.stop()
        server.stop()


def _report(res: dict[str, Any]) -> None:
    el = res["elapsed_s"]
    kind = f"{res['task_ms']} ms" if res["task_ms"] else "no-op"
    print(
        f"\n{res['tasks']} {kind} tasks, {res['workers']} workers: {res['tasks_per_s']:.0f} tasks/s end to end "
        f"({el:.1f} s; job submitted in {res['submit_s']:.1f} s)\n"
        f"  ask for a task (report done + get next): p50 {res['ask_p50_ms']:.1f} ms, "
        f"p99 {res['ask_p99_ms']:.1f} ms over {res['requests']} requests; without each worker's first: "
        f"p50 {res['steady_p50_ms']:.1f} ms, p99 {res['steady_p99_ms']:.1f} ms\n"
        f"  Manager peak RSS {res['manager_peak_rss_mb']:.0f} MB; CPU over the run: "
        f"Server {res['server_cpu_s']:.1f} s ({100 * res['server_cpu_s'] / el:.0f}%), "
        f"Manager {res['manager_cpu_s']:.1f} s ({100 * res['manager_cpu_s'] / el:.0f}%), "
        f"load generator {res['loadgen_cpu_s']:.1f} s ({100 * res['loadgen_cpu_s'] / el:.0f}%)"
    )
    what = f"paced_{res['task_ms']}ms" if res["task_ms"] else "noop"
    record(f"{what}_{res['tasks']}_tasks_per_s", res["tasks_per_s"])
    record(f"{what}_{res['tasks']}_ask_p99_ms", res["ask_p99_ms"])


@pytest.mark.bench
@pytest.mark.timeout(3600)
def test_farm_throughput(tmp_path: Path) -> None:
    workers = int(os.environ.get("BENCH_WORKERS", "200"))
    procs = int(os.environ.get("BENCH_PROCS", "4"))
    prefetch = int(os.environ.get("BENCH_PREFETCH", "1000"))
    sizes = [int(os.environ.get("BENCH_TASKS", "20000"))]
    if large := os.environ.get("BENCH_TASKS_LARGE"):
        sizes.append(int(large))
    for n in sizes:
        res = run_farm(tmp_path / f"run{n}", n, workers, procs, prefetch)
        _report(res)
        assert res["done_by_workers"] >= n
    # Closed loop: with no-op tasks every worker asks again at once, so by Little's law the answer time is
    # workers / throughput whatever the Manager does. Tasks that take a while show the latency a worker sees.
    task_ms = int(os.environ.get("BENCH_TASK_MS", "150"))
    n = sizes[0]
    res = run_farm(tmp_path / f"paced{n}", n, workers, procs, prefetch, task_ms)
    _report(res)
    assert res["done_by_workers"] >= n


if __name__ == "__main__":
    import uvloop

    host, port, secret, n, prefix, seconds = sys.argv[1:7]
    uvloop.run(loadgen_main(host, int(port), secret, int(n), prefix, float(seconds)))

"""Benchmarks of the Server under hostile or heavy load: a 1,000,000-task job submitted while others write,
500 idle event-stream clients, and 10 concurrent wrong-password logins.

Run with `make bench` (or `pytest -m bench -s tests/bench/bench_trust.py`); figures are printed and recorded
in docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.test_server_jobs import render_job
from tests.support.services import ServerProcess

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
API = "/api/v1"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _server(tmp_path: Path, **env: str) -> ServerProcess:
    return ServerProcess(data_dir=tmp_path / "server", database_url=None, env=dict(env)).start()


def _rss_mb(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def _writes(server: ServerProcess, job_id: int, stop: threading.Event, out: list[float]) -> None:
    """Priority changes of one job, one after another, until `stop`: the 'other writes'."""
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=120) as c:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            r = c.post(f"/jobs/{job_id}/priority", json={"priority": 10 + i % 80})
            out.append(time.perf_counter() - t)
            if out[-1] > 0.5:
                print(f"  slow write: {out[-1]:.2f} s, ended at {time.perf_counter():.1f}")
            assert r.status_code == 200, r.text
            i += 1
            time.sleep(0.02)


def test_other_writes_while_a_million_task_job_is_submitted(tmp_path: Path) -> None:
    server = _server(tmp_path)
    try:
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        h = server.headers()
        small = httpx.post(f"{server.url}{API}/jobs", json=render_job("small", frames="1"), headers=h).json()
        quiet: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=_writes, args=(server, small["id"], stop, quiet))
        t.start()
        time.sleep(3)
        stop.set()
        t.join()
        busy: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=_writes, args=(server, small["id"], stop, busy))
        peak = _rss_mb(proc)
        writer.start()
        started = time.perf_counter()
        print(f"  submission starts at {started:.1f}")
        answer: list[httpx.Response] = []
        body = render_job("million", frames="1-1000000", chunk=1, preview_video=False)
        submit = threading.Thread(
            target=lambda: answer.append(httpx.post(f"{server.url}{API}/jobs", json=body, headers=h, timeout=1200))
        )
        submit.start()
        while submit.is_alive():
            peak = max(peak, _rss_mb(proc))
            time.sleep(0.1)
        took = time.perf_counter() - started
        stop.set()
        writer.join()
        assert answer and answer[0].status_code == 201, answer[0].text[:500] if answer else "no answer"
        assert answer[0].json()["tasks_total"] == 1_000_000
        print(
            f"\n1,000,000-task job submitted in {took:.1f} s; other writes meanwhile: {len(busy)}, "
            f"p50 {statistics.median(busy) * 1000:.0f} ms, p99 {_pct(busy, 0.99) * 1000:.0f} ms, "
            f"max {max(busy) * 1000:.0f} ms (quiet p50 {statistics.median(quiet) * 1000:.1f} ms); "
            f"peak Server RSS {peak:.0f} MB"
        )
    finally:
        server.stop()


async def _open_streams(url: str, token: str, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = url.removeprefix("http://").split(":")
    out = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET {API}/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0], head
        out.append((reader, writer))
    return out


def test_500_idle_event_stream_clients(tmp_path: Path) -> None:
    server = _server(tmp_path)
    try:
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)

        async def probe(seconds: float) -> dict[str, Any]:
            cpu0 = proc.cpu_times()
            wall0 = time.perf_counter()
            times: list[float] = []
            async with httpx.AsyncClient(base_url=server.url + API) as c:
                end = time.perf_counter() + seconds
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    assert (await c.get("/health")).status_code == 200
                    times.append(time.perf_counter() - t)
                    await asyncio.sleep(0.05)
            cpu1 = proc.cpu_times()
            wall = time.perf_counter() - wall0
            # the health probe itself costs some of it: this is an upper bound on the idle streams' cost
            cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100
            return {"cpu": cpu, "p50": statistics.median(times), "p99": _pct(times, 0.99), "n": len(times)}

        async def run() -> tuple[dict[str, Any], dict[str, Any]]:
            quiet = await probe(15)
            streams = await _open_streams(server.url, server.admin_token, 500)
            await asyncio.sleep(3)
            busy = await probe(15)
            for _, w in streams:
                w.close()
            return quiet, busy

        quiet, fig = asyncio.run(run())
        print(
            f"\n500 idle event-stream clients: Server CPU {fig['cpu']:.1f} % of a core (with the health probe); "
            f"health p50 {fig['p50'] * 1000:.1f} ms, p99 {fig['p99'] * 1000:.1f} ms over {fig['n']} requests; "
            f"without them: CPU {quiet['cpu']:.1f} %, health p50 {quiet['p50'] * 1000:.1f} ms, "
            f"p99 {quiet['p99'] * 1000:.1f} ms"
        )
    finally:
        server.stop()


def test_other_writes_during_10_concurrent_wrong_password_logins(tmp_path: Path) -> None:
    # the back-off would turn most wrong logins into cheap 429s: switched off, every one hashes
    server = _server(tmp_path, TABLAO_AUTH_FREE_FAILURES="1000000000")
    try:
        h = server.headers()
        httpx.post(f"{server.url}{API}/users", json={"name": "ana", "role": "artist", "password": "right-password"},
                   headers=h)  # fmt: skip
        job = httpx.post(f"{server.url}{API}/jobs", json=render_job("w", frames="1"), headers=h).json()

        def measure(seconds: float) -> list[float]:
            out: list[float] = []
            stop = threading.Event()
            t = threading.Thread(target=_writes, args=(server, job["id"], stop, out))
            t.start()
            time.sleep(seconds)
            stop.set()
            t.join()
            return out

        quiet = measure(8)
        stop = threading.Event()
        logins = [0]

        def wrong_logins() -> None:
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    r = c.post(f"{server.url}{API}/auth/login", json={"username": "ana", "password": "wrong-one"})
                    assert r.status_code == 422
                    logins[0] += 1

        attackers = [threading.Thread(target=wrong_logins) for _ in range(10)]
        for a in attackers:
            a.start()
        time.sleep(1)
        busy = measure(8)
        stop.set()
        for a in attackers:
            a.join()
        q, b = statistics.median(quiet), statistics.median(busy)
        print(
            f"\nother writes: quiet p50 {q * 1000:.1f} ms; during 10 concurrent wrong-password logins "
            f"({logins[0]} logins) p50 {b * 1000:.1f} ms ({b / q:.2f}x), p99 {_pct(busy, 0.99) * 1000:.1f} ms"
        )
    finally:
        server.stop()

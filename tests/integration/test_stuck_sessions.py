"""A Server stopped in the middle of sending a statement (its session "active", waiting for the rest) held its
locks with no timeout, and every other Server's writes waited behind them: its session is ended."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from services.server.db.engine import APPLICATION_NAME
from services.server.db.notify import conninfo
from services.server.db.stuck_sessions import application_name, end_stuck
from tests.support.databases import fresh_postgres_database
from tests.support.manager import API
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _dsn(url: str) -> str:
    return conninfo(make_url(url))


@contextmanager
def stuck_session(url: str, name: str, *, lock: int = 7316) -> Iterator[int]:
    """A session that took `lock` (the farm-wide event lock by default) and then had only part of a pipeline
    sent, as a Server stopped in the middle of an executemany leaves it: its process id."""
    conn = psycopg.connect(_dsn(url), application_name=name)
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        pid = conn.info.backend_pid
        pipeline = conn.pipeline()
        pipeline.__enter__()
        conn.execute("SELECT 1")  # its Sync never comes
        conn.pgconn.flush()
        yield pid
    finally:
        conn.pgconn.finish()  # gone without ending the pipeline, as a killed process's would be


@contextmanager
def idle_in_transaction(url: str, name: str) -> Iterator[int]:
    with psycopg.connect(_dsn(url), application_name=name) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(4)")
        yield conn.info.backend_pid
        conn.rollback()


def _alive(url: str, pid: int) -> bool:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        return bool(row and row[0])


async def _end_stuck(url: str, name: str, after: float) -> list[int]:
    async with await psycopg.AsyncConnection.connect(_dsn(url), autocommit=True) as conn:
        return await end_stuck(conn, name, after)


def test_only_a_servers_session_stuck_mid_statement_past_the_bound_is_ended(pg_url: str) -> None:
    with (
        stuck_session(pg_url, APPLICATION_NAME, lock=1) as stuck,
        stuck_session(pg_url, "somebody-elses-tool", lock=2) as other_app,
        idle_in_transaction(pg_url, APPLICATION_NAME) as idle,  # the idle timeout's, not this look's
    ):
        time.sleep(1.2)
        with stuck_session(pg_url, APPLICATION_NAME, lock=3) as recent:
            assert asyncio.run(_end_stuck(pg_url, APPLICATION_NAME, 1.0)) == [stuck]
            wait_for(lambda: not _alive(pg_url, stuck), timeout=10, what="the stuck session to end")
            assert _alive(pg_url, recent) and _alive(pg_url, other_app) and _alive(pg_url, idle)


def test_the_name_the_database_url_gives_is_the_one_looked_for() -> None:
    assert application_name(make_url("postgresql+psycopg://u@h/db")) == APPLICATION_NAME
    assert application_name(make_url("postgresql+psycopg://u@h/db?application_name=farm-a")) == "farm-a"


def test_a_server_goes_on_writing_when_another_stopped_mid_statement_holding_the_event_lock(
    tmp_path: Path, pg_url: str
) -> None:
    """Before, the submission (it writes an event) waited for the lock until the client's timeout."""
    server = ServerProcess(data_dir=tmp_path / "server", database_url=pg_url, extra_args=("--lease-seconds", "8"))
    server.start()
    try:
        with stuck_session(pg_url, APPLICATION_NAME) as pid:
            body = {"name": "after the stall", "type": "exec", "settings": {"command": ["true"], "frames": "1"}}
            began = time.monotonic()
            r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
            took = time.monotonic() - began
            assert r.status_code == 201, r.text
            assert took < 10, f"{took:.1f} s"  # the bound is a quarter lease (2 s here), looked at every second
            assert not _alive(pg_url, pid)
        assert f"ended PostgreSQL session {pid}" in server.log_path.read_text()
    finally:
        server.stop()

"""A database too busy to take a write in time is a 503 saying so, not an anonymous 500."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError

from services.server.api.storage_errors import _STATUS
from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.engine import SQLITE_NAME, make_engine
from services.server.db.problems import describe, kind
from tests.support.databases import fresh_postgres_database


def test_the_writer_turn_timing_out_is_named_busy() -> None:
    # what db/engine.py's _WriterTurn raises when another write of this process holds the turn too long
    exc = OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked (writer turn timed out)"))
    assert kind(exc) == "busy"
    assert _STATUS["busy"] == 503  # the same request may well succeed a moment later
    assert str(describe(exc, "db")).startswith("storage busy: the database db took no write in time")


@pytest.mark.timeout(60)
async def test_a_write_locked_out_by_another_process_is_a_503(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path))
    engine = app.state.engine

    @event.listens_for(engine, "connect")
    def impatient(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout = 200")  # after the Server's 30 s, so the test is quick

    engine.dispose()
    other = sqlite3.connect(tmp_path / SQLITE_NAME, isolation_level=None)  # another process, an admin command
    other.execute("BEGIN IMMEDIATE")
    token = (tmp_path / "admin.token").read_text().strip()
    body = {"name": "waits", "type": "exec", "settings": {"command": ["echo", "x"], "frames": "1"}}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"})
    finally:
        other.rollback()
        other.close()
        engine.dispose()
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith("storage busy:"), r.text
    assert r.headers["Retry-After"] == "1"  # this Server works: the same request, again in a moment


@pytest.mark.timeout(60)
def test_a_postgresql_deadlock_is_busy_not_a_500() -> None:
    """A claim locks tasks then their job, a pause the job then its tasks: PostgreSQL breaks such a deadlock by
    failing one transaction, which is to be tried again (503), not an error inside the service (500)."""
    with fresh_postgres_database() as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t VALUES (1), (2)"))
        barrier, failures = threading.Barrier(2), []

        def lock(first: int, second: int) -> None:
            try:
                with engine.begin() as conn:
                    conn.execute(text("SELECT id FROM t WHERE id = :i FOR UPDATE"), {"i": first})
                    barrier.wait(10)
                    conn.execute(text("SELECT id FROM t WHERE id = :i FOR UPDATE"), {"i": second})
            except OperationalError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=lock, args=order) for order in ((1, 2), (2, 1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        engine.dispose()
    assert len(failures) == 1, failures
    assert kind(failures[0]) == "busy"
    assert str(describe(failures[0], "db")).startswith("storage busy")


@pytest.mark.timeout(60)
def test_a_postgresql_connection_ended_under_a_request_is_unreachable_not_a_500() -> None:
    """A backend ended by pg_terminate_backend (or a restart of PostgreSQL) in the middle of a transaction was an
    error inside the service, a 500 with a traceback in the Server's log, where an unreachable database is a 503."""
    with fresh_postgres_database() as url:
        engine = create_engine(url)
        admin = create_engine(url)
        with pytest.raises(OperationalError) as info, engine.begin() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.execute(text("SELECT 1"))
        engine.dispose()
        admin.dispose()
    assert kind(info.value) == "unreachable", info.value
    assert str(describe(info.value, "db")).startswith("cannot reach the database db")


@pytest.mark.timeout(60)
def test_a_postgresql_transaction_left_waiting_past_its_bound_lets_go_of_its_locks() -> None:
    """A Server stopped (SIGSTOP, a paused VM) in the middle of a transaction held its row locks for as long as it
    was stopped, and every other Server of the farm waited on them (a Manager's batches and claims stalled until
    the stopped one went on, two minutes in an integration test). PostgreSQL now ends such a session after
    `hung_after` seconds: the others go on, and the stopped one, going on, meets a 503 (the database out of reach)."""
    with fresh_postgres_database() as url:
        hung = make_engine(url, hung_after=0.5)
        other = make_engine(url, hung_after=0.5)
        with other.begin() as conn:
            conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, n int)"))
            conn.execute(text("INSERT INTO t VALUES (1, 0)"))
        with pytest.raises(DBAPIError) as info, hung.begin() as stopped:
            stopped.execute(text("UPDATE t SET n = n + 1 WHERE id = 1"))  # holds the row's lock
            started = time.monotonic()
            with other.begin() as conn:  # waits for the lock until the stopped session is ended
                conn.execute(text("UPDATE t SET n = n + 10 WHERE id = 1"))
            waited = time.monotonic() - started
            stopped.execute(text("SELECT 1"))  # the stopped Server goes on
        with other.begin() as conn:
            assert conn.execute(text("SELECT n FROM t")).scalar_one() == 10  # the stopped one's change is undone
        hung.dispose()
        other.dispose()
    assert 0.4 < waited < 5, waited
    assert kind(info.value) == "unreachable", info.value

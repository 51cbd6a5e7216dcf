"""A database too busy to take a write in time is a 503 saying so, not an anonymous 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from services.server.api.storage_errors import _STATUS
from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.engine import SQLITE_NAME
from services.server.db.problems import describe, kind


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

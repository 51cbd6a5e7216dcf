"""Database failures said in plain words, from real SQLite and PostgreSQL errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.problems import describe, safe_url


def _error(url: str, *statements: str) -> SQLAlchemyError:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_full_damaged_and_unreachable_databases_are_named(tmp_path: Path) -> None:
    many = "INSERT INTO t SELECT hex(randomblob(4000)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)"
    full = _error(f"sqlite:///{tmp_path / 'full.sqlite'}", "CREATE TABLE t (x TEXT)", "PRAGMA max_page_count = 2", many)
    assert "is full" in str(describe(full, "db"))
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 300)
    damaged = _error(f"sqlite:///{tmp_path / 'bad.sqlite'}", "SELECT * FROM sqlite_master")
    assert "is damaged" in str(describe(damaged, "db"))
    unreachable = _error("postgresql+psycopg://u:pw@127.0.0.1:1/x?connect_timeout=5", "SELECT 1")
    assert "cannot reach" in str(describe(unreachable, "db"))
    assert safe_url("postgresql+psycopg://u:pw@h/x") == "postgresql+psycopg://u:***@h/x"


@pytest.mark.timeout(60)
async def test_a_full_disk_during_a_request_is_a_507_saying_so(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path))
    engine = app.state.engine

    @event.listens_for(engine, "connect")
    def no_room(dbapi_conn: Any, _record: Any) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()  # new connections get the limit: the disk is "full" from now on
    token = (tmp_path / "admin.token").read_text().strip()
    body = {"name": "big", "type": "exec", "settings": {"command": ["echo", "x" * 2000], "frames": "1-200"}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 507, r.text
    assert "is full" in r.json()["detail"] and "nothing was lost" in r.json()["detail"]
    assert str(tmp_path) not in r.text and "sqlite" not in r.text  # where the database lies is the admin's to know
    engine.dispose()

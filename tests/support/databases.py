"""Database URLs for Server tests: a SQLite file, or a fresh PostgreSQL database on 127.0.0.1:5432."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_pg_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not (cached)."""
    if "reason" not in _pg_state:
        try:
            engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except OperationalError as exc:
            _pg_state["reason"] = f"no PostgreSQL at 127.0.0.1:5432 ({str(exc).splitlines()[0]})"
    return _pg_state["reason"]


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a database of its own for one test and drop it afterwards."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = f"tablao_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.sqlite'}"
    else:
        with fresh_postgres_database() as url:
            yield url

"""The Server's last line against a value the database refuses: a 422 with the usual body, not a 500.

The wire models bound every field to its column (tests/integration/test_unstorable_values.py); this is for a gap
in them. A real refusal from PostgreSQL, raised in a route of an app with the Server's error handlers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from services.server.api import errors
from tests.support.databases import PG_ADMIN_URL, postgres_unavailable


async def test_a_value_postgresql_refuses_is_a_422_naming_the_reason() -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    engine = create_engine(PG_ADMIN_URL)
    app = FastAPI()
    errors.install(app)

    @app.get("/overflow")
    def overflow() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT CAST(:n AS integer)"), {"n": 2**40}).scalar_one())

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/overflow")
    finally:
        engine.dispose()
    assert r.status_code == 422, r.text
    body = r.json()
    assert "out of what the database can store" in body["detail"]
    assert "out of range" in body["detail"]  # PostgreSQL's own words, first line only
    assert [e["field"] for e in body["errors"]] == ["body"]
    assert "SELECT" not in body["detail"]  # no SQL in the answer

"""The admin's token list says when each token was last used (it said nothing, ever): a token's check notes the
time, the Server's housekeeping writes it; a token never used stays without one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.protocol.common import utcnow
from services.server.background import run_sweeps_once
from services.server.config import ServerConfig
from tests.support.inprocess_server import admin_client

API = "/api/v1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as c:
        yield c


def sweep(client: httpx.AsyncClient) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    run_sweeps_once(app.state.write_sessions, app.state.sweeps)


async def tokens_by_user(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await client.get(f"{API}/tokens")
    assert r.status_code == 200, r.text
    return {t["user"]: t for t in r.json()}


async def test_a_used_token_shows_when_and_an_unused_one_shows_nothing(client: httpx.AsyncClient) -> None:
    for name in ("used", "idle"):
        r = await client.post(f"{API}/users", json={"name": name, "role": "artist"})
        assert r.status_code == 201, r.text
    used = (await client.post(f"{API}/tokens", json={"user": "used"})).json()["token"]
    await client.post(f"{API}/tokens", json={"user": "idle"})
    before = utcnow()
    r = await client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {used}"})
    assert r.status_code == 200, r.text
    sweep(client)
    tokens = await tokens_by_user(client)
    assert tokens["idle"]["last_used"] is None
    when = datetime.fromisoformat(tokens["used"]["last_used"])
    assert before - timedelta(seconds=1) <= when <= utcnow()
    assert tokens["admin"]["last_used"] is not None  # this client's own token: it listed the tokens
    # a later use moves it on, an earlier noted time never moves it back
    app: Any = client.app  # type: ignore[attr-defined]
    token_id = tokens["used"]["id"]
    app.state.token_uses.note(token_id, when - timedelta(hours=1))
    sweep(client)
    assert datetime.fromisoformat((await tokens_by_user(client))["used"]["last_used"]) == when

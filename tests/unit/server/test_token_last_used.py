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
from services.server.db.tables import ApiTokenRow
from services.server.store import auth
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


async def test_tokens_long_expired_are_deleted_by_the_housekeeping_and_recent_ones_listed(
    client: httpx.AsyncClient,
) -> None:
    """From an API fuzzing audit: every login made a token and none was ever deleted (150 logins, 150 rows)."""
    app: Any = client.app  # type: ignore[attr-defined]
    r = await client.post(f"{API}/users", json={"name": "ana", "role": "artist"})
    assert r.status_code == 201, r.text
    made = [(await client.post(f"{API}/tokens", json={"user": "ana", "name": f"t{i}"})).json()["id"] for i in range(4)]
    now = utcnow()
    ages = {made[0]: timedelta(days=31), made[1]: timedelta(days=29), made[2]: timedelta(days=-5)}  # 3: no expiry
    with app.state.write_sessions() as session:
        for token_id, age in ages.items():
            session.get_one(ApiTokenRow, token_id).expires = now - age
        session.commit()
    sweep(client)
    listed = {t["id"] for t in (await client.get(f"{API}/tokens")).json()}
    assert made[0] not in listed and {made[1], made[2], made[3]} <= listed
    # a new token never takes a deleted one's id (a retried revoke of the old id must not meet it)
    again = (await client.post(f"{API}/tokens", json={"user": "ana"})).json()["id"]
    assert again > max(made)


async def test_the_expired_tokens_sweep_goes_in_batches(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    monkeypatch.setattr(auth, "PRUNE_BATCH", 3)
    for i in range(7):
        assert (await client.post(f"{API}/tokens", json={"user": "admin", "name": f"old{i}"})).status_code == 201
    with app.state.write_sessions() as session:
        for row in session.query(ApiTokenRow).filter(ApiTokenRow.name.like("old%")):
            row.expires = utcnow() - timedelta(days=40)
        session.commit()
    with app.state.write_sessions() as session:
        assert auth.prune_expired_tokens(session) is True  # 3 of 7: more left
        session.commit()
    sweep(client)  # repeats within its round until none is left
    names = {t["name"] for t in (await client.get(f"{API}/tokens")).json()}
    assert not any(n and n.startswith("old") for n in names), names

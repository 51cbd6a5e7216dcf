"""User names differ by more than case, so a login's name is taken in any case (`ana` logs in as `Ana`; it was a
401), and its failures count against the one user whatever case they are typed in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.config import ServerConfig
from tests.support.inprocess_server import admin_client

API = "/api/v1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path, auth_free_failures=3)) as c:
        r = await c.post(f"{API}/users", json={"name": "Ana", "role": "artist", "password": "ana-password"})
        assert r.status_code == 201, r.text
        yield c


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"username": name, "password": password})


@pytest.mark.parametrize("typed", ["Ana", "ana", "ANA"])
async def test_a_login_in_any_case_is_the_user(client: httpx.AsyncClient, typed: str) -> None:
    r = await login(client, typed, "ana-password")
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    me = await client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 403  # an artist: the token is Ana's, not an admin's
    tokens = (await client.get(f"{API}/tokens")).json()
    assert [t["user"] for t in tokens if t["name"] == "login"] == ["Ana"]


async def test_failures_in_other_cases_count_against_the_same_user(client: httpx.AsyncClient) -> None:
    for typed in ("ANA", "aNa", "Ana", "ana"):
        r = await login(client, typed, "wrong-one")
        assert r.status_code in (401, 429), r.text
    app: Any = client.app  # type: ignore[attr-defined]
    # the user's own count (not only the address's): four in as many spellings passed its three free failures
    assert app.state.login_backoff.retry_after(("user", "ana")) > 0


async def test_a_wrong_password_in_other_case_is_refused(client: httpx.AsyncClient) -> None:
    r = await login(client, "ana", "not-her-password")
    assert r.status_code == 401, r.text

"""A revoked token's, a removed Manager's and a removed webhook's id is never a new one's (on SQLite the next row
took the highest id plus one): an admin's retried `DELETE /tokens/12` revoked the user's new login, given id 12."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.server.config import ServerConfig
from tests.support.inprocess_server import admin_client

API = "/api/v1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as c:
        yield c


async def test_a_retried_revoke_does_not_revoke_the_next_token(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/users", json={"name": "bo", "role": "artist", "password": "bo-password"})
    assert r.status_code == 201, r.text
    old = await client.post(f"{API}/tokens", json={"user": "bo"})
    assert old.status_code == 201, old.text
    old_id = old.json()["id"]
    assert (await client.delete(f"{API}/tokens/{old_id}")).status_code == 204
    login = await client.post(f"{API}/auth/login", json={"username": "bo", "password": "bo-password"})
    assert login.status_code == 200, login.text
    new_token = login.json()["token"]
    tokens = (await client.get(f"{API}/tokens")).json()
    assert all(t["id"] != old_id for t in tokens), tokens
    assert (await client.delete(f"{API}/tokens/{old_id}")).status_code == 404  # the retry
    mine = await client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {new_token}"})
    assert mine.status_code == 200, mine.text


async def test_a_removed_managers_id_is_not_a_new_managers(client: httpx.AsyncClient) -> None:
    old = await client.post(f"{API}/managers", json={"name": "site-old"})
    assert old.status_code == 201, old.text
    assert (await client.delete(f"{API}/managers/{old.json()['id']}")).status_code == 204
    new = await client.post(f"{API}/managers", json={"name": "site-new"})
    assert new.status_code == 201, new.text
    assert new.json()["id"] > old.json()["id"]
    assert (await client.delete(f"{API}/managers/{old.json()['id']}")).status_code == 404


async def test_a_removed_webhooks_id_is_not_a_new_webhooks(client: httpx.AsyncClient) -> None:
    body = {"name": "old", "url": "https://hooks.example.com/a"}
    old = await client.post(f"{API}/webhooks", json=body)
    assert old.status_code == 201, old.text
    assert (await client.delete(f"{API}/webhooks/{old.json()['id']}")).status_code == 204
    new = await client.post(f"{API}/webhooks", json={**body, "name": "new"})
    assert new.status_code == 201, new.text
    assert new.json()["id"] > old.json()["id"]
    assert (await client.delete(f"{API}/webhooks/{old.json()['id']}")).status_code == 404

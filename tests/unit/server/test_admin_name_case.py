"""User and Manager names differ by more than case, for the admin commands and the API alike: `tablao tokens create
bob` finds the user `Bob` (it said "no user named 'bob'"), `Render-A` beside `render-a` is refused (both were
registered), and where a farm from before the rule has `Bob` and `BOB` a name in other case is ambiguous, listing
them, rather than one picked."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.server.cli import admin_main
from services.server.config import ServerConfig
from services.server.db.engine import SQLITE_NAME
from tests.support.inprocess_server import admin_client
from tests.support.server_db import server_database

API = "/api/v1"


def _run(capsys: pytest.CaptureFixture[str], kind: str, *argv: str, data: Path) -> tuple[int, str, str]:
    code = admin_main(kind, [*argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_user_is_found_by_its_name_in_other_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server_database(tmp_path)
    assert _run(capsys, "users", "add", "Bob", "--role", "artist", data=tmp_path)[0] == 0
    code, out, err = _run(capsys, "users", "password", "bob", "--password", "bob-password", data=tmp_path)
    assert (code, err) == (0, "") and out.startswith("password of user Bob set")
    code, token, err = _run(capsys, "tokens", "create", "BOB", "--name", "laptop", data=tmp_path)
    assert (code, err) == (0, "") and token.strip()
    code, out, _ = _run(capsys, "tokens", "list", "bob", data=tmp_path)
    assert code == 0 and out.splitlines()[1].split("\t")[1:3] == ["Bob", "laptop"]
    assert _run(capsys, "users", "disable", "bOb", data=tmp_path)[1].startswith("user Bob disabled")


def test_names_differing_only_in_case_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server_database(tmp_path)
    assert _run(capsys, "users", "add", "Bob", "--role", "artist", data=tmp_path)[0] == 0
    code, _, err = _run(capsys, "users", "add", "bob", "--role", "admin", data=tmp_path)
    assert code == 1 and err.count("\n") == 1
    assert "a user named 'Bob' exists already (user names must differ by more than case)" in err
    assert _run(capsys, "managers", "add", "Render-A", data=tmp_path)[0] == 0
    code, _, err = _run(capsys, "managers", "add", "render-a", data=tmp_path)
    assert code == 1 and err.count("\n") == 1
    assert "a manager named 'Render-A' exists already (manager names must differ by more than case)" in err
    code, out, _ = _run(capsys, "managers", "list", data=tmp_path)
    assert code == 0 and [line.split("\t")[1] for line in out.splitlines()] == ["Render-A"]


def test_a_name_two_users_of_a_farm_from_before_have_is_ambiguous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server_database(tmp_path)
    with sqlite3.connect(tmp_path / SQLITE_NAME) as db:  # as migration 0013 left such a farm: no index
        db.execute("DROP INDEX ux_users_name_lower")
        for name in ("Bob", "BOB"):
            db.execute("INSERT INTO users (name, role, created) VALUES (?, 'artist', CURRENT_TIMESTAMP)", (name,))
    code, _, err = _run(capsys, "tokens", "create", "bob", data=tmp_path)
    assert code == 1 and err.count("\n") == 1
    assert "'bob' is ambiguous: it is the name of users BOB, Bob in other case; give one exactly" in err
    code, token, _ = _run(capsys, "tokens", "create", "Bob", data=tmp_path)  # the exact name still is the one
    assert code == 0 and token.strip()
    code, _, err = _run(capsys, "users", "password", "nobody", "--password", "long-enough", data=tmp_path)
    assert code == 1 and "no user named 'nobody'" in err


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as c:
        yield c


async def test_the_api_refuses_a_manager_named_in_other_case(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/managers", json={"name": "Render-A"})).status_code == 201
    for other in ("Render-A", "render-a", "RENDER-A"):
        r = await client.post(f"{API}/managers", json={"name": other})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name", r.text
        assert "'Render-A' exists already" in r.json()["detail"]
    assert [m["name"] for m in (await client.get(f"{API}/managers")).json()] == ["Render-A"]


async def test_the_api_makes_a_token_for_a_user_named_in_other_case(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/users", json={"name": "Bob", "role": "artist"})).status_code == 201
    r = await client.post(f"{API}/tokens", json={"user": "bob", "name": "laptop"})
    assert r.status_code == 201 and r.json()["user"] == "Bob", r.text
    r = await client.post(f"{API}/tokens", json={"user": "nobody"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "user", r.text

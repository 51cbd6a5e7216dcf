"""The admin commands (`tablao users|tokens|managers`) find the Server's database or refuse; they never make one.

A folder without the Server's database is refused in one line, with nothing created; a local farm's folder (what
`tablao all-in-one --data-dir` was given) means its Server's database in `server/`. Run as real processes: the
exit code, the one line and the files left behind are what a newcomer meets.
"""

from __future__ import annotations

import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from services.server.db.engine import SQLITE_NAME
from services.server.db.migrate import upgrade
from tests.support.databases import fresh_postgres_database
from tests.support.server_db import server_database
from tests.support.services import ROOT, child_env, tablao_command

pytestmark = pytest.mark.timeout(120)

COMMANDS = [
    ["users", "add", "carl", "--role", "artist"],
    ["users", "list"],
    ["tokens", "create", "carl"],
    ["managers", "add", "room-a"],
    ["managers", "list"],
]


def tablao(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tablao_command(*args), cwd=ROOT, env=child_env(**env), capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def user_names(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM users ORDER BY name")]
    conn.close()
    return names


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr.strip()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_folder_without_a_server_database_is_refused_and_nothing_is_created(
    command: list[str], tmp_path: Path
) -> None:
    nowhere, empty = tmp_path / "nowhere", tmp_path / "empty"
    empty.mkdir()
    for folder in (nowhere, empty):
        r = tablao(*command, "--data-dir", str(folder))
        assert r.returncode == 2 and r.stdout == "", r.stdout
        line = one_line(r)
        assert line.startswith(f"tablao {command[0]}: no Server database in {folder}"), line
        assert "--data-dir" in line
    assert not nowhere.exists()
    assert list(empty.iterdir()) == []


def test_the_default_folder_without_a_server_database_is_refused(tmp_path: Path) -> None:
    r = tablao("users", "add", "carl", "--role", "artist", TABLAO_DATA_DIR=str(tmp_path / "farm"))
    assert r.returncode == 2
    line = one_line(r)
    assert f"no Server database in {tmp_path / 'farm' / 'server'}" in line and "TABLAO_DATA_DIR" in line
    assert not (tmp_path / "farm").exists()


def test_a_local_farms_folder_means_its_servers_database(tmp_path: Path) -> None:
    farm = tmp_path / "farm"  # as `tablao all-in-one --data-dir farm` leaves it
    database = server_database(farm / "server")
    r = tablao("users", "add", "carl", "--role", "artist", "--data-dir", str(farm))
    assert r.returncode == 0 and r.stdout.strip() == "user carl (artist) added", r.stderr
    assert user_names(database) == ["carl"]
    r = tablao("tokens", "create", "carl", "--data-dir", str(farm))
    assert r.returncode == 0 and r.stdout.startswith("tbl_"), r.stderr
    r = tablao("users", "list", "--data-dir", str(farm / "server"))  # the Server's own folder works as before
    assert r.returncode == 0 and r.stdout.split() == ["carl", "artist"], r.stderr
    # the default folder is the local farm's too (TABLAO_DATA_DIR, then server/)
    r = tablao("users", "list", TABLAO_DATA_DIR=str(farm))
    assert r.returncode == 0 and r.stdout.split() == ["carl", "artist"], r.stderr
    assert sorted(p.name for p in farm.iterdir()) == ["server"], "no stray database in the farm's folder"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for leftover in database.parent.iterdir():  # the WAL and shared-memory files the command made: 0600 too
        assert stat.S_IMODE(leftover.stat().st_mode) & 0o077 == 0, leftover


def test_a_farm_folder_holding_a_stray_database_too_is_refused_naming_both(tmp_path: Path) -> None:
    farm = tmp_path / "farm"
    database = server_database(farm / "server")
    stray = server_database(farm / "stray").rename(farm / SQLITE_NAME)  # what older admin commands left there
    r = tablao("users", "add", "carl", "--role", "artist", "--data-dir", str(farm))
    assert r.returncode == 2
    line = one_line(r)
    assert str(stray) in line and str(database) in line
    assert user_names(database) == [] and user_names(stray) == []


def test_a_sqlite_file_that_is_not_a_servers_database_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    with sqlite3.connect(folder / SQLITE_NAME) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    r = tablao("users", "add", "carl", "--role", "artist", "--data-dir", str(folder))
    assert r.returncode == 2
    assert "holds no Tablao Server database" in one_line(r)
    with sqlite3.connect(folder / SQLITE_NAME) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    conn.close()
    assert tables == ["notes"]


def test_an_empty_postgresql_database_is_refused_and_left_empty() -> None:
    with fresh_postgres_database() as url:
        r = tablao("users", "add", "carl", "--role", "artist", "--database-url", url)
        assert r.returncode == 2
        line = one_line(r)
        assert "holds no Tablao Server database" in line and "start the Server" in line
        engine = create_engine(url)
        try:
            assert inspect(engine).get_table_names() == []
            upgrade(engine)  # as the Server's first start does
        finally:
            engine.dispose()
        r = tablao("users", "add", "carl", "--role", "artist", "--database-url", url)
        assert r.returncode == 0 and "user carl (artist) added" in r.stdout, r.stderr

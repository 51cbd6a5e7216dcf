"""The admin a Server makes at its start: the admin.token file, or the preset TABLAO_ADMIN_TOKEN
(services/server/store/auth.bootstrap_admin), and what revoking or disabling them does to later starts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from services.protocol.states import Role
from services.server.config import ServerConfig
from services.server.db.engine import make_engine, sqlite_url
from services.server.store.auth import (
    add_user,
    bootstrap_admin,
    create_token,
    revoke_token,
    user_by_name,
    user_for_token,
)
from services.server.store.errors import Conflict
from tests.support.inprocess_server import admin_client
from tests.support.server_db import server_database


@pytest.mark.parametrize("left", [b"\xff\xfe\x00garbage", b"not a token of this farm\n", b""])
def test_an_admin_token_file_the_database_does_not_know_is_replaced(tmp_path: Path, left: bytes) -> None:
    """Hand-edited or put in place by mistake (even bytes that are not text): the start writes a working one."""
    server_database(tmp_path)
    (tmp_path / "admin.token").write_bytes(left)
    engine = make_engine(sqlite_url(tmp_path))
    try:
        with Session(engine) as session, session.begin():
            bootstrap_admin(session, tmp_path, None)
        token = (tmp_path / "admin.token").read_text().strip()
        with Session(engine) as session:
            found = user_for_token(session, token)
            assert found is not None and found[0].name == "admin"
        with Session(engine) as session, session.begin():  # the next start keeps it
            bootstrap_admin(session, tmp_path, None)
        assert (tmp_path / "admin.token").read_text().strip() == token
    finally:
        engine.dispose()


@contextmanager
def _session(data: Path) -> Iterator[Session]:
    """A session in a transaction on the database in `data`, committed at the end, its engine disposed."""
    engine = make_engine(sqlite_url(data))
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _start(data: Path, preset: str | None) -> None:
    """What a Server's start does with the admin (app.py's lifespan), on the database in `data`."""
    with _session(data) as session:
        bootstrap_admin(session, data, preset)


def _works(data: Path, token: str) -> bool:
    with _session(data) as session:
        return user_for_token(session, token) is not None


def _change(data: Path, change: Callable[[Session], None]) -> None:
    with _session(data) as session:
        change(session)


PRESET = "preset-admin-token-0123456789"


def test_a_revoked_preset_admin_token_stays_revoked_across_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It lives in unit files and CI variables: one that leaked and was revoked came back at the next start."""
    server_database(tmp_path)
    _start(tmp_path, PRESET)
    assert _works(tmp_path, PRESET)
    token_id = _token_id(tmp_path, PRESET)
    _change(tmp_path, lambda s: revoke_token(s, token_id))
    assert not _works(tmp_path, PRESET)
    _change(tmp_path, lambda s: revoke_token(s, token_id))  # a repeat keeps it revoked
    for _ in range(2):
        _start(tmp_path, PRESET)
        assert not _works(tmp_path, PRESET)
    assert "TABLAO_ADMIN_TOKEN holds a token that was revoked" in caplog.text
    other = PRESET + "-rotated"
    _start(tmp_path, other)  # a new one in the environment is installed
    assert _works(tmp_path, other) and not _works(tmp_path, PRESET)


def _token_id(data: Path, token: str) -> int:
    with _session(data) as session:
        found = user_for_token(session, token)
        assert found is not None
        return found[1].id


@pytest.mark.parametrize("preset", [PRESET, None])
def test_a_disabled_admin_stays_disabled_and_the_server_still_starts(
    tmp_path: Path, preset: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """With a preset token, the start inserted its hash again and the unique index stopped every start."""
    server_database(tmp_path)
    _start(tmp_path, preset)
    token = preset or (tmp_path / "admin.token").read_text().strip()

    def disable(session: Session) -> None:
        admin = user_by_name(session, "admin")
        assert admin is not None
        admin.disabled = True

    _change(tmp_path, disable)
    for _ in range(2):
        _start(tmp_path, preset)
        assert not _works(tmp_path, token)
    assert "the user admin is disabled" in caplog.text
    assert (tmp_path / "admin.token").exists() == (preset is None)
    if preset is None:
        assert (tmp_path / "admin.token").read_text().strip() == token  # not replaced by one that cannot work


def test_no_token_is_made_for_a_disabled_user(tmp_path: Path) -> None:
    """Enabling the user later would have brought it to life, unseen by whoever disabled the user."""
    server_database(tmp_path)
    _start(tmp_path, None)

    def make(session: Session) -> None:
        bob = add_user(session, "bob", Role.ARTIST)
        bob.disabled = True
        with pytest.raises(Conflict, match="user bob is disabled: enable it first"):
            create_token(session, bob, "laptop")

    _change(tmp_path, make)


def test_no_other_token_may_take_the_presets_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Revoking a token of that name only expires it (the preset's rule): one an admin named so could never go."""
    from services.server.cli import admin_main

    server_database(tmp_path)
    _start(tmp_path, None)
    assert admin_main("tokens", ["create", "admin", "--name", "preset", "--data-dir", str(tmp_path)]) != 0
    assert "kept for TABLAO_ADMIN_TOKEN" in capsys.readouterr().err


async def test_the_api_keeps_the_presets_name_too(tmp_path: Path) -> None:
    async with admin_client(ServerConfig(data_dir=tmp_path)) as admin:
        r = await admin.post("/api/v1/tokens", json={"user": "admin", "name": "preset"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text
        assert (await admin.post("/api/v1/tokens", json={"user": "admin", "name": "laptop"})).status_code == 201


@pytest.mark.parametrize("what", ["device", "symlink", "file", "folder", "no folder", "fifo"])
def test_a_managers_token_file_is_written_only_as_a_new_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """From a CLI audit: `--token-file /dev/full` (as root) replaced the device with a file holding the token; a
    symbolic link or another file was replaced alike, and a mistyped folder was made."""
    from services.server.cli import admin_main
    from tests.support.server_db import server_database

    server_database(tmp_path / "s")
    kept = tmp_path / "precious.txt"
    kept.write_text("keep me\n")
    target = {"device": Path("/dev/null"), "file": kept, "folder": tmp_path, "no folder": tmp_path / "nope" / "t"}.get(
        what, tmp_path / "t"
    )
    if what == "symlink":
        target.symlink_to(kept)
    elif what == "fifo":
        os.mkfifo(target)
    code = admin_main("managers", ["add", "room-a", "--token-file", str(target), "--data-dir", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith(f"tablao managers: --token-file {target}: "), err
    assert kept.read_text() == "keep me\n" and not (tmp_path / "nope").exists()
    assert Path("/dev/null").is_char_device() and (what != "symlink" or target.is_symlink())
    code = admin_main("managers", ["list", "--data-dir", str(tmp_path / "s")])
    assert "room-a" not in capsys.readouterr().out  # refused before anything was added
    assert admin_main("managers", ["add", "room-a", "--token-file", str(tmp_path / "new.token"),
                                   "--data-dir", str(tmp_path / "s")]) == 0  # fmt: skip
    assert (tmp_path / "new.token").read_text().strip()

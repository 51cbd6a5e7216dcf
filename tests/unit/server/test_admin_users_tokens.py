"""On the Server's machine, an admin disables and enables users and lists and revokes API tokens from the command
line (a headless farm's admin needed the API and curl for both, and had no way to stop a user added by mistake)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.server.cli import admin_main
from services.server.db.engine import SQLITE_NAME
from tests.support.server_db import server_database


def _run(capsys: pytest.CaptureFixture[str], kind: str, *argv: str, data: Path) -> tuple[int, str, str]:
    code = admin_main(kind, [*argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return code, out, err


def _user_with_token(capsys: pytest.CaptureFixture[str], data: Path, name: str, role: str, token_name: str) -> str:
    """A user with one token, on a Server database made as the Server makes it; the token."""
    server_database(data)
    assert _run(capsys, "users", "add", name, "--role", role, data=data)[0] == 0
    code, token, _ = _run(capsys, "tokens", "create", name, "--name", token_name, data=data)
    assert code == 0 and token.strip()
    return token


def test_users_disabled_enabled_and_tokens_listed_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _user_with_token(capsys, tmp_path, "bob", "admin", "laptop")
    assert _run(capsys, "users", "add", "root", "--role", "admin", data=tmp_path)[0] == 0

    code, out, _ = _run(capsys, "tokens", "list", "bob", data=tmp_path)
    assert code == 0
    header, row = out.splitlines()
    assert header.split("\t")[:3] == ["id", "user", "name"]
    token_id, user, name, *_ = row.split("\t")
    assert (user, name) == ("bob", "laptop") and token.strip() not in out  # never the secret

    assert _run(capsys, "users", "disable", "bob", data=tmp_path)[:2] == (
        0,
        "user bob disabled (a Server running on this database refuses their tokens within seconds)\n",
    )
    assert "bob\tadmin\tdisabled" in _run(capsys, "users", "list", data=tmp_path)[1]
    code, _, err = _run(capsys, "users", "disable", "root", data=tmp_path)  # the last enabled admin
    assert code == 1 and "last enabled admin" in err
    assert _run(capsys, "users", "enable", "bob", data=tmp_path)[0] == 0
    assert "bob\tadmin\n" in _run(capsys, "users", "list", data=tmp_path)[1]

    assert _run(capsys, "tokens", "revoke", token_id, data=tmp_path)[0] == 0
    assert _run(capsys, "tokens", "list", "bob", data=tmp_path)[1].count("\n") == 1  # the header alone
    code, _, err = _run(capsys, "tokens", "revoke", token_id, data=tmp_path)
    assert code == 1 and f"no token with id {token_id}" in err
    code, _, err = _run(capsys, "users", "disable", "nobody", data=tmp_path)
    assert code == 1 and "no user named 'nobody'" in err
    code, _, err = _run(capsys, "tokens", "revoke", str(2**40), data=tmp_path)  # past the 32-bit ids
    assert code == 2 and f"no token has the id {2**40}" in err


def test_a_tokens_name_is_listed_without_its_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _user_with_token(capsys, tmp_path, "ana", "artist", "laptop")
    # a name no longer taken (one line, no control characters), as a version before that check stored it
    code, _, err = _run(capsys, "tokens", "create", "ana", "--name", "\x1b]0;pwned\x07", data=tmp_path)
    assert code != 0 and "name" in err
    with sqlite3.connect(tmp_path / SQLITE_NAME) as db:
        db.execute("UPDATE api_tokens SET name = ? WHERE name = 'laptop'", ("\x1b]0;pwned\x07",))
    out = _run(capsys, "tokens", "list", data=tmp_path)[1]
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07" in out

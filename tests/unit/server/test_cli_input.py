"""`tablao server` and the admin commands refuse bad input in one line naming the option or variable."""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.server.cli import admin_main, main
from services.server.config import ServerConfig, database_url
from tests.support.server_db import server_database

BAD_ENV = [
    ("TABLAO_AUTH_FREE_FAILURES", "abc"),
    ("TABLAO_AUTH_FREE_FAILURES", "-1"),
    ("TABLAO_ORPHAN_SECONDS", "x"),
    ("TABLAO_ORPHAN_SECONDS", "0"),
    ("TABLAO_UTILISATION_SAMPLE_SECONDS", "-1"),
    ("TABLAO_UTILISATION_SAMPLE_SECONDS", "inf"),
    ("TABLAO_MAX_TASKS_PER_JOB", "lots"),
    ("TABLAO_WEBHOOK_BACKOFF_MAX", "nan"),
    ("TABLAO_WEBHOOK_TIMEOUT", "-3"),
    ("TABLAO_WEBHOOK_MAX_ATTEMPTS", "abc"),
    ("TABLAO_WEBHOOK_CONCURRENCY", "0"),
]


class WouldServe(Exception):
    """`tablao server` accepted its input and was about to listen."""


def _no_serving(*_args: object, **_kwargs: object) -> None:
    raise WouldServe


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.protocol.serving.quick_server", _no_serving)  # never listen in these tests
    for name in ("TABLAO_DATABASE_URL", "TABLAO_ADMIN_TOKEN", "TABLAO_VARIABLES", *(n for n, _ in BAD_ENV)):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)  # the admin commands make their files private (umask 077)


def _one_line_naming(err: str, name: str) -> None:
    assert "Traceback" not in err and name in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--port", "99999"), ("--port", "-5"), ("--port", "x"), ("--lease-seconds", "nan"),
     ("--lease-seconds", "inf"), ("--lease-seconds", "0"), ("--lease-seconds", "-1")],
)  # fmt: skip
def test_server_refuses_bad_numbers(flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(tmp_path), flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # argparse: the usage, then one line
    assert f"argument {flag}:" in err


@pytest.mark.parametrize(("name", "value"), BAD_ENV)
def test_bad_environment_is_named(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        ServerConfig.from_env()


def test_good_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_AUTH_FREE_FAILURES", "0")
    monkeypatch.setenv("TABLAO_UTILISATION_SAMPLE_SECONDS", "0")
    monkeypatch.setenv("TABLAO_MAX_TASKS_PER_JOB", "none")
    monkeypatch.setenv("TABLAO_WEBHOOK_BACKOFF_MAX", "0.5")
    monkeypatch.setenv("TABLAO_WEBHOOK_MAX_ATTEMPTS", "5")
    cfg = ServerConfig.from_env()
    assert cfg.auth_free_failures == 0 and cfg.utilisation_sample_seconds == 0 and cfg.max_tasks_per_job is None
    assert cfg.webhooks.backoff_max == 0.5 and cfg.webhooks.max_attempts == 5


@pytest.mark.parametrize(("name", "value"), [*BAD_ENV, ("TABLAO_VARIABLES", "/no/such/variables.json")])
def test_server_and_admin_name_a_bad_variable(
    name: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["--data-dir", str(tmp_path)]) == 2
    _one_line_naming(capsys.readouterr().err, name)
    assert admin_main("users", ["list", "--data-dir", str(tmp_path)]) == 2
    _one_line_naming(capsys.readouterr().err, name)


def test_admin_data_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    for where in (tmp_path / "f", tmp_path / "f" / "sub"):
        assert admin_main("users", ["list", "--data-dir", str(where)]) != 0
        _one_line_naming(capsys.readouterr().err, "--data-dir")


@pytest.mark.parametrize(
    "url", ["notaurl", "postgresql://u:secret@h:abc/x", "mysql://u:secret@h/x", "postgres://u:secret@h:abc/x"]
)
def test_admin_bad_database_url(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin_main("managers", ["list", "--data-dir", str(tmp_path), "--database-url", url]) != 0
    err = capsys.readouterr().err
    _one_line_naming(err, "--database-url")
    assert "secret" not in err


def test_admin_database_of_a_newer_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = server_database(tmp_path)
    assert admin_main("users", ["list", "--data-dir", str(tmp_path)]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.close()
    assert admin_main("users", ["list", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    _one_line_naming(err, "the database was made by a newer version of Tablao (its schema revision '0099'")


@pytest.mark.parametrize(
    ("kind", "argv", "named"),
    [
        ("users", ["add", "", "--role", "admin"], "NAME"),
        ("users", ["add", "a/;b", "--role", "admin"], "NAME"),
        ("users", ["add", "x" * 300, "--role", "admin"], "NAME"),
        ("users", ["add", "\udcff", "--role", "admin"], "NAME"),
        ("users", ["add", "alice", "--role", "admin", "--password", "short"], "--password"),
        ("users", ["add", "alice", "--role", "admin", "--password", "\udcff" * 9], "--password"),
        ("managers", ["add", ""], "NAME"),
        ("managers", ["add", "\udcff"], "NAME"),
        ("tokens", ["create", "alice", "--name", "n" * 500], "--name"),
        ("tokens", ["create", "alice", "--name", "\udcff"], "--name"),
        ("tokens", ["create", "\udcff"], "USER"),
    ],
)
def test_admin_refuses_what_the_api_refuses(
    kind: str, argv: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server_database(tmp_path)
    assert admin_main("users", ["add", "alice", "--role", "admin", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert admin_main(kind, [*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    _one_line_naming(err, named)
    assert "short" not in err  # a password is never echoed
    admin_main("users", ["list", "--data-dir", str(tmp_path)])
    assert capsys.readouterr().out.split() == ["alice", "admin"]  # nothing was added


def test_admin_accepts_good_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server_database(tmp_path)
    d = ["--data-dir", str(tmp_path)]
    assert admin_main("users", ["add", "bob.s@x", "--role", "artist", "--password", "long enough", *d]) == 0
    assert admin_main("tokens", ["create", "bob.s@x", "--name", "laptop", *d]) == 0
    assert admin_main("managers", ["add", "m-1", *d]) == 0
    out = capsys.readouterr().out
    assert "user bob.s@x (artist) added" in out


def test_only_the_named_reverse_proxies_are_believed_about_the_client_address() -> None:
    from services.protocol.serving import proxy_settings

    assert proxy_settings({}) == {"proxy_headers": False}
    assert proxy_settings({"TABLAO_TRUSTED_PROXIES": " , "}) == {"proxy_headers": False}
    assert proxy_settings({"TABLAO_TRUSTED_PROXIES": "10.0.0.5, 10.0.0.6"}) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "10.0.0.6"],
    }


def test_a_short_password_from_standard_input_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`printf 'short\\n' | tablao users password admin` said "--password is refused", though none was given."""
    server_database(tmp_path)
    assert admin_main("users", ["add", "alice", "--role", "admin", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert admin_main("users", ["password", "alice", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tablao users: the password on standard input is refused: it has fewer than 8 characters"


@pytest.mark.parametrize(
    "text",
    ["[submit.job_types]\nExec = []\n", '[sumbit]\ncommand = ["admin"]\n', 'submit = "admin"\n', "outputs = 1\n"],
)
def test_server_refuses_a_policy_it_would_misread(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policy.toml").write_text(text)
    assert main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    _one_line_naming(err, str(tmp_path / "policy.toml"))
    assert err.startswith("tablao server: cannot start: ")


@pytest.mark.parametrize(
    ("value", "why"),
    [("a", "1 characters, fewer than 16"), ("tbl_0123456789abcdef\nx", "more than one line"),
     ("tbl_0123456789abcdéf", "not ASCII"), ("tbl_0123456789\x7fabcdef", "control character")],
)  # fmt: skip
def test_a_preset_admin_token_nobody_could_use_stops_the_server(
    value: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLAO_ADMIN_TOKEN", value)
    assert main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    _one_line_naming(err, "TABLAO_ADMIN_TOKEN")
    assert why in err and "0123456789" not in err


def test_a_preset_admin_token_is_stripped_as_a_token_file_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_ADMIN_TOKEN", " tbl_0123456789abcdef\n")
    assert ServerConfig.from_env().admin_token == "tbl_0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),  # was a RecursionError traceback
        ('{"render_root": {"linux": "/r\\u0000x"}}', "'render_root' on 'linux' holds a control character"),
        ('{"": {"linux": "/r"}}', "a path variable has an empty name"),
    ],
)
def test_server_refuses_a_variables_file_no_task_could_use(
    text: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vars.json"
    path.write_text(text)
    assert main(["--data-dir", str(tmp_path), "--variables", str(path)]) == 2
    err = capsys.readouterr().err
    _one_line_naming(err, str(path))
    assert why in err
    monkeypatch.setenv("TABLAO_VARIABLES", str(path))
    assert main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    _one_line_naming(err, "TABLAO_VARIABLES")
    assert why in err and str(path) in err


def test_a_database_url_as_psql_writes_it_is_psycopgs_and_other_databases_are_named() -> None:
    """SQLAlchemy's words were "Can't load plugin: sqlalchemy.dialects:postgres" and "No module named 'MySQLdb'"."""
    for given in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        assert database_url(given) == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:////tmp/x.sqlite") == "sqlite:////tmp/x.sqlite"
    for given, said in (("mysql://u@h/db", "mysql:// is not a database Tablao runs on"), ("u@h/db", "is written")):
        with pytest.raises(ValueError, match=said):
            database_url(given)


def test_a_token_made_for_a_person_says_where_it_goes_and_one_made_for_a_file_is_bare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a newcomer's audit: `tablao tokens create ana` printed the bare token and nothing of what to do with
    it; `> ana.token` must still get the token alone."""
    server_database(tmp_path)
    assert admin_main("users", ["add", "ana", "--role", "artist", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert admin_main("tokens", ["create", "ana", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("tbl_") and out.count("\n") == 1 and err == ""
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert admin_main("tokens", ["create", "ana", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("tbl_")
    assert err == "(the token of ana, shown once: keep it in a file for --token-file, or in TABLAO_TOKEN)\n"

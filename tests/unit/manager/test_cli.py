"""`tablao manager` refuses bad flags, files and environment variables with one line naming them, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.manager import cli
from services.manager.cli import main, parse_args
from services.manager.config import ManagerConfig
from tests.support.services import ROOT


class _NoStart:
    """Stands in for process_guard: a Manager that gets past its checks fails the test instead of starting."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the Manager went on to start (process_guard.{name})")


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(cli, "process_guard", _NoStart())
    for env in ("TABLAO_WORKER_TIMEOUT", "TABLAO_BLOCKLIST_THRESHOLD", "TABLAO_AUTH_FREE_FAILURES",
                "TABLAO_MANAGER_PUBLIC_URL"):  # fmt: skip
        monkeypatch.delenv(env, raising=False)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    return ["--server", "http://127.0.0.1:9", "--token-file", str(token), "--data-dir", str(tmp_path / "m")]


def _variables(tmp_path: Path, text: str) -> str:
    path = tmp_path / "vars.json"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--worker-timeout", "0"], "--worker-timeout"),
        (["--worker-timeout", "-3"], "--worker-timeout"),
        (["--worker-timeout", "nan"], "--worker-timeout"),
        (["--worker-timeout", "inf"], "--worker-timeout"),
        (["--blocklist-threshold", "0"], "--blocklist-threshold"),
        (["--blocklist-threshold", "x"], "--blocklist-threshold"),
        (["--prefetch-margin", "-1"], "--prefetch-margin"),
        (["--port", "70000"], "--port"),
        (["--port", "-5"], "--port"),
        (["--log-level", "bogus"], "--log-level"),
        (["--variables", "/nonexistent/vars.json"], "--variables"),
        (["--public-url", "render-a:8471"], "--public-url"),
    ],
)
def test_out_of_range_flags_are_argparse_errors(
    base: list[str], flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*base, *flags])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"tablao manager: error: argument {named}")


@pytest.mark.parametrize(
    "text",
    [
        "{bad",
        "[1, 2]",
        '{"a": "/r"}',
        '{"a": {"linux": 1}}',
        json.dumps({f"v{i}": {"linux": "/r"} for i in range(501)}),  # more than the Server takes the names of
    ],
)
def test_a_malformed_variables_file_is_refused_naming_it(
    base: list[str], text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _variables(tmp_path, text)
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--variables", path])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --variables" in last and path in last


def test_good_values_are_taken(base: list[str], tmp_path: Path) -> None:
    variables = {"render_root": {"linux": "/r", "windows": "R:\\"}}
    args = parse_args([
        *base, "--port", "0", "--worker-timeout", "2.5", "--blocklist-threshold", "1", "--prefetch-margin", "0",
        "--log-level", "DEBUG", "--variables", _variables(tmp_path, json.dumps(variables)),
    ])  # fmt: skip
    assert (args.port, args.worker_timeout, args.blocklist_threshold, args.prefetch_margin) == (0, 2.5, 1, 0)
    assert args.log_level == "debug" and args.variables == variables


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--server", "http://host:abc"], "tablao manager: --server: 'http://host:abc' is not a valid URL"),
        (["--server", "http://[::1"], "tablao manager: --server: 'http://[::1' is not a valid URL"),
        (["--server", "http://ok:1,ftp://h"], "tablao manager: --server: 'ftp://h' is not an http"),
    ],
)
def test_a_bad_server_url_is_one_line(
    base: list[str], flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*base, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


def test_an_empty_token_file_is_refused(base: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-token"
    empty.write_text(" \n")
    assert main([*base, "--token-file", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"tablao manager: --token-file: {empty} is empty"


def test_a_token_file_that_is_not_text_is_one_line(
    base: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "token.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")  # was a UnicodeDecodeError traceback
    assert main([*base, "--token-file", str(binary)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"tablao manager: --token-file: cannot read {binary}: it is not text (UTF-8), so not a Manager token file"
    )


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("TABLAO_WORKER_TIMEOUT", "abc"),
        ("TABLAO_WORKER_TIMEOUT", "0"),
        ("TABLAO_WORKER_TIMEOUT", "nan"),
        ("TABLAO_BLOCKLIST_THRESHOLD", "0"),
        ("TABLAO_AUTH_FREE_FAILURES", "-1"),
        ("TABLAO_MANAGER_PUBLIC_URL", "not a url"),
    ],
)
def test_a_bad_environment_variable_is_one_line_naming_it(
    base: list[str], env: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=f"^{env}: "):
        ManagerConfig.from_env("http://s", "t")
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tablao manager: {env}: ") and "\n" not in err


def test_environment_values_are_converted_by_field_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_MANAGER_PUBLIC_URL", "http://render-a.lan:8471/")
    monkeypatch.setenv("TABLAO_WORKER_TIMEOUT", "12.5")
    monkeypatch.setenv("TABLAO_BLOCKLIST_THRESHOLD", "4")
    monkeypatch.setenv("TABLAO_AUTH_FREE_FAILURES", "0")
    cfg = ManagerConfig.from_env("http://s", "t", worker_timeout=None)
    assert cfg.public_url == "http://render-a.lan:8471"
    assert (cfg.worker_timeout, cfg.blocklist_threshold, cfg.auth_free_failures) == (12.5, 4, 0)
    assert ManagerConfig.from_env("http://s", "t", worker_timeout=3.0).worker_timeout == 3.0  # a flag wins


def test_module_entry_point_gives_no_traceback(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t\n")
    proc = subprocess.run(
        [sys.executable, "-m", "services.manager.cli", "--server", "http://127.0.0.1:9", "--token-file", str(token),
         "--data-dir", str(tmp_path / "m"), "--worker-timeout", "nan"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--worker-timeout" in proc.stderr


def test_a_misspelt_required_option_is_named(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--srver URL` was "the following arguments are required: --server", the typo unmentioned."""
    argv = ["--srver" if a == "--server" else a for a in base]
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "tablao manager: error: unrecognized arguments: --srver (did you mean --server?)"


@pytest.mark.parametrize(
    ("text", "why"),
    [("t0ken\nsecond\n", "more than one line"), ("t0k\x00en\n", "control character"), ("t0kén\n", "not ASCII")],
)
def test_a_token_no_header_can_carry_is_refused_without_showing_it(
    base: list[str], text: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a line break went raw into the lean transport's header: a 400 at every call, for ever
    path = tmp_path / "bad-token"
    path.write_text(text, encoding="utf-8")
    assert main([*base, "--token-file", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tablao manager: --token-file: the token in {path} is not usable: ") and why in err
    assert "\n" not in err and "t0k" not in err


@pytest.mark.parametrize("value", ["s3cret\x01", "s3\x1bcret", "x" * 201])
def test_a_registration_secret_no_worker_can_send_is_refused(
    base: list[str], value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLAO_WORKER_REGISTRATION_SECRET", value)
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tablao manager: TABLAO_WORKER_REGISTRATION_SECRET is not a usable registration secret: ")
    assert "\n" not in err and "s3" not in err and "xxx" not in err


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),  # was a RecursionError traceback
        ('{"render_root": {"linux": "/r\\u0000x"}}', "'render_root' on 'linux' holds a control character"),
        ('{"render_root": {"linux": "/r\\nx"}}', "'render_root' on 'linux' holds a control character"),
        ('{"": {"linux": "/r"}}', "a path variable has an empty name"),
        ('{"root\\u001b": {"linux": "/r"}}', "'root\\x1b' holds a control character"),
    ],
)
def test_a_variables_file_no_task_could_use_is_refused_naming_it(
    base: list[str], text: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _variables(tmp_path, text)
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--variables", path])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and "argument --variables" in last and path in last and why in last


def test_a_variable_may_hold_any_space(base: list[str], tmp_path: Path) -> None:
    variables = {"render root": {"linux": "/mnt/Render\u00a0Farm/out"}}
    args = parse_args([*base, "--variables", _variables(tmp_path, json.dumps(variables))])
    assert args.variables == variables

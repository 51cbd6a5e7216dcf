"""`tablao worker` argument errors, defaults and the credentials file, in real processes where it matters."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.worker import cli, credentials
from services.worker.cli import build_parser, main, make_config
from tests.support.services import ROOT


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --manager"),
        (["--manager", "localhost:8081"], "--manager: 'localhost:8081' is not an http"),
        (["--manager", "http://h", "--name", "bad name!"], "--name: 'bad name!' must be"),
        (["--manager", "http://h", "--registration-secret-file", "/nonexistent/secret"], "cannot read"),
        # a binary file was a traceback
        (
            ["--manager", "http://h", "--registration-secret-file", "/bin/sh"],
            "it is over 64 KiB, so not a registration",
        ),
        (["--manager", "http://h", "--blender", "/nonexistent/blender"], "--blender: program '/nonexistent/blender'"),
        (["--manager", "http://h", "--task-types", ","], "--task-types: give at least one"),
        # a worker offering a type no job can name signed on, and showed it in every list
        (["--manager", "http://h", "--task-types", "exec,Blender"], "--task-types: 'Blender' is no task type"),
        (["--manager", "http://h", "--task-types", "\u202eexec"], "--task-types: '\\u202eexec' is no task type"),
        (["--manager", "http://h", "--bogus"], "unrecognized arguments: --bogus"),
        # a misspelt required option was "the following arguments are required: --manager", the typo unnamed
        (["--manger", "http://h"], "unrecognized arguments: --manger (did you mean --manager?)"),
        (["--manger=http://h", "--tagz", "gpu"], "unrecognized arguments: --manger --tagz (did you mean --manager?)"),
        (["--manager", "http://127.0.0.1:abc"], "--manager: 'http://127.0.0.1:abc' is not a valid URL"),
        (["--manager", "http://[::1"], "--manager: 'http://[::1' is not a valid URL"),
        (["--manager", "http://h", "--poll-wait", "nan"], "argument --poll-wait: must be within 0..60"),
        (["--manager", "http://h", "--poll-wait", "61"], "argument --poll-wait: must be within 0..60"),
        (["--manager", "http://h", "--heartbeat-interval", "nan"], "argument --heartbeat-interval: 'nan' is not"),
        (["--manager", "http://h", "--heartbeat-interval", "inf"], "argument --heartbeat-interval: 'inf' is not"),
        (["--manager", "http://h", "--heartbeat-interval", "0"], "argument --heartbeat-interval: must be"),
        (["--manager", "http://h", "--may-i-run-interval", "inf"], "argument --may-i-run-interval: 'inf' is not"),
        (["--manager", "http://h", "--tags", "gpu, rtx 4090"], "--tags: 'rtx 4090' is not a tag: letters"),
        (["--manager", "http://h", "--tags", "gp\nu"], "--tags: 'gp\\nu' is not a tag"),
        (["--manager", "http://h", "--tags", ",".join(f"t{i}" for i in range(51))], "--tags: at most 50 tags"),
    ],
)
def test_bad_input_is_one_readable_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "process_guard", None)  # a worker that gets past its checks fails here, not runs
    assert main([*argv, "--data-dir", str(tmp_path)] if argv else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tablao worker: error: ")
    assert message in err
    assert "\n" not in err


def test_empty_secret_file_is_refused(tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text("\n")
    assert main(["--manager", "http://h", "--registration-secret-file", str(secret), "--data-dir", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_defaults_work_on_one_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("TABLAO_WORKER_REGISTRATION_SECRET", "from-env")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = make_config(build_parser().parse_args(["--manager", "http://127.0.0.1:8081/", "--tags", "gpu, big ,"]))
    assert cfg.registration_secret == "from-env"
    assert cfg.tags == ["gpu", "big"]
    assert cfg.task_types is None
    assert cfg.data_dir.name == f"worker-{cfg.name}"
    assert "tablao" in str(cfg.data_dir)


def test_the_secret_file_wins_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TABLAO_WORKER_REGISTRATION_SECRET", "from-env")
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    cfg = make_config(build_parser().parse_args(["--manager", "http://h", "--registration-secret-file", str(secret)]))
    assert cfg.registration_secret == "from-file"


def test_module_entry_point_runs_and_fails_cleanly_without_a_secret(tmp_path):
    # nothing listens on port 9 and the worker is not registered: it must say what is missing and exit 1
    env = {k: v for k, v in os.environ.items() if k != "TABLAO_WORKER_REGISTRATION_SECRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "services.worker.cli", "--manager", "http://127.0.0.1:9", "--data-dir", str(tmp_path),
         "--task-types", "misc"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "no registration secret was given" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_credentials_file_is_private_and_bound_to_its_manager(tmp_path: Path):
    creds = credentials.Credentials("http://m:8081", "w-1", "s3cret")
    credentials.save(tmp_path, creds)
    path = tmp_path / credentials.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load(tmp_path, "http://m:8081/") == creds
    assert credentials.load(tmp_path, "http://other:8081") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="delete it to register again"):
        credentials.load(tmp_path, "http://m:8081")


def test_a_second_worker_on_a_running_workers_data_dir_is_refused(tmp_path, capsys):
    # two workers on one data directory would send one buffer's updates twice under one identity
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    data = tmp_path / "w"
    argv = ["--manager", "http://127.0.0.1:9", "--registration-secret-file", str(secret), "--data-dir", str(data),
            "--task-types", "misc"]  # fmt: skip
    first = subprocess.Popen([sys.executable, "-m", "services.worker.cli", *argv], stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        # nothing listens on port 9: the first keeps trying to register, holding the data directory
        deadline = time.monotonic() + 30
        lock = data / cli.LOCK_NAME
        while not lock.exists() or lock.read_text() != str(first.pid):
            assert first.poll() is None and time.monotonic() < deadline, "the first worker did not start"
            time.sleep(0.05)
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"another worker (process {first.pid}) is running with the data directory {data}" in err
        assert "each worker needs its own --data-dir" in err
        assert first.poll() is None, "the refused start disturbed the running worker"
    finally:
        first.kill()
        first.wait()


def test_the_help_shows_a_managers_default_port():
    text = build_parser().format_help()
    assert "http://127.0.0.1:8471" in text and "8081" not in text


@pytest.mark.parametrize(
    ("text", "why"),
    [("s3cret\x00\n", "control character"), ("# farm secret\ns3cret\n", "more than one line"), ("x" * 201, "201")],
)
def test_a_registration_secret_the_manager_would_refuse_stops_the_worker_at_start(
    text: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the Manager's 422 was retried every few seconds, for ever
    monkeypatch.setattr(cli, "process_guard", None)  # a worker that gets past its checks fails here, not runs
    path = tmp_path / "secret"
    path.write_text(text)
    assert main(["--manager", "http://h", "--registration-secret-file", str(path), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tablao worker: error: --registration-secret-file: the secret in {path} is not usable: ")
    assert why in err and "\n" not in err and "s3cret" not in err
    monkeypatch.setenv("TABLAO_WORKER_REGISTRATION_SECRET", text.replace("\x00", "\x01"))  # no NUL in an env
    assert main(["--manager", "http://h", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tablao worker: error: TABLAO_WORKER_REGISTRATION_SECRET is not a usable registration")
    assert why in err and "\n" not in err and "s3cret" not in err


def test_stored_credentials_no_header_can_carry_are_damaged(tmp_path: Path) -> None:
    credentials.save(tmp_path, credentials.Credentials("http://m:8081", "w-1", "s3cret\n"))
    with pytest.raises(ValueError, match=r"more than one line.*delete it to register again") as caught:
        credentials.load(tmp_path, "http://m:8081")
    assert "s3cret" not in str(caught.value)


def test_a_registration_secret_may_hold_any_space_but_no_control_character(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("our farm\u00a0secret\n")  # taken by the Manager as it is: not refused here either
    args = build_parser().parse_args(["--manager", "http://h", "--registration-secret-file", str(path)])
    assert make_config(args).registration_secret == "our farm\u00a0secret"

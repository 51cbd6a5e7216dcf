"""`tablao --version` prints the installed version and exits at once, without Qt; a mistyped command and Ctrl-C
while a command loads are one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.farm import free_port_pair


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag: str) -> None:
    code = "import sys, app.cli; rc = app.cli.main([sys.argv[1]]); assert 'PySide6' not in sys.modules; sys.exit(rc)"
    out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True, timeout=50)
    assert out.stdout == f"tablao {version('tablao')}\n"


@pytest.mark.parametrize(("typed", "meant"), [("submti", "submit"), ("wroker", "worker"), ("job-type", "job-types")])
def test_a_mistyped_command_is_one_line_naming_the_likely_one(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a newcomer's audit: `tablao submti` printed 40 lines of usage and no word of `submit`."""
    import app.cli

    assert app.cli.main([typed, "x.json"]) == 2
    assert capsys.readouterr().err == (
        f"tablao: unknown command {typed!r} (did you mean {meant}?); tablao help lists them\n"
    )


def test_a_word_like_no_command_gets_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    import app.cli

    assert app.cli.main(["zzzzzz"]) == 2
    assert "unknown command 'zzzzzz'\n\n" in capsys.readouterr().err


def test_ctrl_c_while_a_command_loads_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a newcomer's audit: Ctrl-C in the first half second of `tablao all-in-one` was a traceback of the
    imports it interrupted (the command's own handling of Ctrl-C begins once they are loaded)."""
    import app.cli

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("importlib.import_module", interrupted)
    assert app.cli.main(["server", "--help"]) == 130
    assert capsys.readouterr().err == "tablao: interrupted\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("after", [0.3, 0.8, 1.5])
def test_ctrl_c_early_in_the_all_in_one_is_no_traceback(after: float, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "all-in-one", "--headless", "--data-dir", str(tmp_path / "farm"),
         "--port", str(free_port_pair())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert "Traceback" not in out and "error:" not in out, out

"""`tablao --version` prints the installed version and exits at once, without Qt."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


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

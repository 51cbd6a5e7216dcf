"""`tablao all-in-one` has one parser whatever the mode, and without a display says so in one line before Qt starts.

Real processes with no display (no DISPLAY, WAYLAND_DISPLAY or QT_QPA_PLATFORM): what a newcomer on a server or
over ssh meets. Qt used to abort such a process (SIGABRT) and --help showed the desktop app's usage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.display import missing_display
from tests.support.services import ROOT

pytestmark = pytest.mark.timeout(120)

NO_QT = "assert 'PySide6' not in sys.modules, 'Qt was loaded'"


def run(*args: str, qt_may_load: bool = False, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    code = "import sys; from app.cli import main; rc = main(sys.argv[1:]); " + ("" if qt_may_load else NO_QT + "; ")
    return subprocess.run([sys.executable, "-c", code + "sys.exit(rc)", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_help_is_the_all_in_one_usage_with_all_its_options() -> None:
    for argv in (["--help"], ["--headless", "--help"]):
        r = run("all-in-one", *argv)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: tablao all-in-one"), r.stdout
        for option in ("--headless", "--data-dir", "--port", "--workers", "--demo", "--output-root"):
            assert option in r.stdout, option
        assert "desktop app." not in r.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--hedless"], "unrecognized arguments: --hedless"),  # (--headles is an abbreviation of --headless)
        (["--workers", "-1"], "--workers must be 0 or more"),
        (["--port", "65535"], "--port must be within 1..65534 (the Manager takes the next port)"),
        (["--port", "x"], "argument --port: invalid int value: 'x'"),
    ],
)
def test_errors_show_the_all_in_one_usage_in_either_mode(argv: list[str], says: str, tmp_path: Path) -> None:
    for mode in ([], ["--headless"]):
        r = run("all-in-one", *mode, *argv, "--data-dir", str(tmp_path / "farm"))
        assert r.returncode == 2
        assert r.stderr.startswith("usage: tablao all-in-one"), r.stderr
        assert r.stderr.strip().splitlines()[-1] == f"tablao all-in-one: error: {says}"
    assert not (tmp_path / "farm").exists()


def test_without_a_display_it_says_so_in_one_line_and_starts_nothing(tmp_path: Path) -> None:
    r = run("all-in-one", "--port", "8670", "--workers", "1", "--data-dir", str(tmp_path / "farm"))
    assert r.returncode == 2, r.stderr  # was -SIGABRT from Qt
    assert r.returncode != -signal.SIGABRT
    assert r.stderr.strip() == "tablao all-in-one: no display: run with --headless (make run HEADLESS=1)"
    assert r.stdout == ""
    assert not (tmp_path / "farm").exists()


def test_the_desktop_app_without_a_display_says_so_in_one_line(tmp_path: Path) -> None:
    for argv in ([], ["desktop"], ["desktop", "--embedded", "--data-dir", str(tmp_path / "farm")]):
        r = run(*argv, qt_may_load=True, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.strip().startswith("tablao: no display: the desktop app needs one"), r.stderr
        assert "tablao all-in-one --headless" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "farm").exists()


def test_the_windowed_farm_gets_the_all_in_one_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --headless the desktop app runs the farm with what was given; defaults stay the app's settings."""
    calls: list[tuple[str, str, tuple[object, ...]]] = []

    def run_command(module: str, function: str, *args: object) -> int:
        calls.append((module, function, args))
        return 0

    monkeypatch.setattr(cli, "_run", run_command)
    monkeypatch.setattr("app.display.missing_display", lambda: False)
    argv = ["--data-dir", "/f", "--port", "9000", "--workers", "0", "--demo", "--output-root", "/a", "--output-root",
            "/b c"]  # fmt: skip
    assert cli.main(["all-in-one", *argv]) == 0
    assert cli.main(["all-in-one"]) == 0
    assert cli.main(["all-in-one", "--headless", "--workers", "1"]) == 0
    expected = ["--embedded", "--data-dir", "/f", "--port", "9000", "--workers", "0", "--demo", "--output-root", "/a",
                "--output-root", "/b c"]  # fmt: skip
    assert calls == [
        ("app.desktop", "main", (expected,)),
        ("app.desktop", "main", (["--embedded"],)),
        ("services.localfarm.cli", "main", (["--headless", "--workers", "1"],)),
    ]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, True),
        ({"DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "offscreen:fontengine=freetype"}, False),
        ({"QT_QPA_PLATFORM": "minimal"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, True),
        ({"QT_QPA_PLATFORM": ""}, True),
    ],
)
def test_what_counts_as_a_display_on_linux(env: dict[str, str], missing: bool) -> None:
    assert missing_display(env, "linux") is missing
    assert missing_display(env, "darwin") is False and missing_display(env, "win32") is False

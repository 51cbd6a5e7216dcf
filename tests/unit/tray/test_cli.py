"""`tablao tray --help` works without a display and without loading Qt; bad options get one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = (
        "import sys; from app.cli import main; rc = main(sys.argv[1:]); "
        "assert 'PySide6' not in sys.modules, 'Qt was loaded'; sys.exit(rc)"
    )
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.mark.timeout(120)
def test_help_needs_no_display() -> None:
    r = run("tray", "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: tablao tray" in r.stdout and "--away-after" in r.stdout


@pytest.mark.timeout(120)
def test_bad_options_are_one_line_errors() -> None:
    r = run("tray", "--away-after", "0")
    assert r.returncode == 2 and r.stderr.strip() == "tablao tray: error: --away-after must be a finite number > 0"
    r = run("tray", "--hours", '{"days": {"moonday": []}}')
    assert r.returncode == 2 and "unknown day" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_away_after_must_be_finite(value: str) -> None:
    r = run("tray", "--away-after", value)  # refused before Qt loads (the old code went on to start the tray)
    assert r.returncode == 2 and r.stderr.strip() == "tablao tray: error: --away-after must be a finite number > 0"


@pytest.mark.timeout(120)
def test_an_empty_registration_secret_file_is_refused(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  \n")
    r = run("tray", "--registration-secret-file", str(secret))
    assert r.returncode == 2
    assert r.stderr.strip() == f"tablao tray: error: --registration-secret-file: {secret} is empty"


@pytest.mark.timeout(120)
def test_a_registration_secret_file_that_is_not_text_is_one_line(tmp_path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff\xe0")  # was a UnicodeDecodeError traceback
    r = run("tray", "--registration-secret-file", str(secret))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"tablao tray: error: --registration-secret-file: cannot read {secret}: it is not text (UTF-8), so not a "
        "registration secret file"
    )


@pytest.mark.timeout(120)
def test_without_a_display_it_says_so_in_one_line(tmp_path) -> None:
    """Qt used to abort the process (SIGABRT); now one line, before Qt loads (run() checks it was not loaded)."""
    r = run("tray", "--no-save", "--data-dir", str(tmp_path / "tray"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "tablao tray: no display: the tray agent runs in a desktop session (a worker without one: tablao worker)"
    )


@pytest.mark.timeout(120)
def test_away_after_stays_within_what_the_settings_load_again() -> None:
    r = run("tray", "--away-after", "14401")  # 4 h and a second: a saved run would not load back
    assert r.returncode == 2 and r.stderr.strip() == "tablao tray: error: --away-after: at most 14400 seconds"


@pytest.mark.timeout(120)
def test_the_manager_and_name_given_once_are_remembered(tmp_path: Path) -> None:
    """docs/operations.md's roll-out runs `tablao tray --manager URL ...` once; the settings then remember it (from
    an admin/artist audit: they did only when some other setting happened to be changed in that run). Here there
    is no system tray (offscreen): the tray says so in one line and ends, not at a box no one sees."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "tray", "--manager", "http://farm:8471/", "--name", "anna-ws",
         "--data-dir", str(tmp_path / "tray")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1 and "no system tray" in r.stderr, r.stderr
    stored = (tmp_path / "Tablao" / "Tablao.conf").read_text()
    assert "manager_url=http://farm:8471" in stored and "worker_name=anna-ws" in stored, stored


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--manager", "ftp://x"), "--manager: not an http:// or https:// URL"),
        (("--manager", "http://u:secret@mgr:8471"), "--manager: not an http:// or https:// URL"),
        (("--name", "a b"), "--name: 1 – 64 letters"),
    ],
)
def test_a_manager_or_name_the_worker_would_refuse_is_one_line(args: tuple[str, ...], said: str) -> None:
    """From an admin/artist audit: the tray started, and its worker exited at once with a usage error that the
    tray took for a crash: restarted for ever, the tooltip showing the URL's password."""
    r = run("tray", *args)
    assert r.returncode == 2 and r.stderr.startswith(f"tablao tray: error: {said}"), r.stderr
    assert "secret" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("under_a_file", "said"), [(False, "it is a file, not a folder"), (True, "cannot be created")])
def test_an_unusable_data_dir_is_one_line(tmp_path: Path, under_a_file: bool, said: str) -> None:
    """From an audit: a traceback (FileExistsError, NotADirectoryError) and a tray that never showed; now one
    line naming the folder and why, before Qt loads."""
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    folder = a_file / "tray" if under_a_file else a_file
    r = run("tray", "--no-save", "--data-dir", str(folder))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"tablao tray: error: --data-dir: {folder}: {said}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.timeout(120)
@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="POSIX modes; root writes anywhere")
def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "tray"
    folder.mkdir(mode=0o500)
    try:
        r = run("tray", "--no-save", "--data-dir", str(folder))
    finally:
        folder.chmod(0o700)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith(f"tablao tray: error: --data-dir: {folder}: cannot be written to ("), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(120)
def test_settings_warnings_land_in_the_log_the_artist_opens(tmp_path: Path) -> None:
    """From an audit: a hand-edited setting the tray ignored was said on stderr only, which no one sees when the
    tray starts at login; now in its log (Show log) too."""
    conf = tmp_path / "Tablao" / "Tablao.conf"
    conf.parent.mkdir()
    hours = json.dumps({"days": {"mon": [["19:00", "08:00"], ["25:00", "26:00"]]}})
    conf.write_text("[tray]\nhours=" + json.dumps(hours) + "\n")  # quoted, as Qt writes it
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "app.cli", "tray", "--no-save", "--data-dir", str(tmp_path / "tray")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 1 and "no system tray" in r.stderr, r.stderr  # offscreen: after the settings load
    said = "tray setting hours: mon: '25:00' is not a time like 19:00: ignored, the other rendering hours kept"
    assert said in r.stderr
    assert said in (tmp_path / "tray" / "worker.log").read_text()


@pytest.mark.timeout(120)
def test_a_registration_secret_without_a_manager_is_refused(tmp_path: Path) -> None:
    """From an audit: it was kept in the keyring under an empty Manager URL, and never used."""
    secret = tmp_path / "secret"
    secret.write_text("farm-secret\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "app.cli", "tray", "--no-save", "--data-dir", str(tmp_path / "tray"),
                        "--registration-secret-file", str(secret)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "tablao tray: error: --registration-secret-file: no Manager to keep the secret for; give --manager URL too"
    )

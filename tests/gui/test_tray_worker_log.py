"""The tray's worker log (it names the Manager, the worker's id, jobs and tasks) is 0600; folders made for it 0700."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from app.tray.child import WorkerChild
from tests.support.file_modes import mode

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


class EchoChild(WorkerChild):
    """The real QProcess plumbing, with a stand-in worker that writes one line to its log (stderr)."""

    @staticmethod
    def worker_argv(args: list[str]) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.stderr.write('signed on to http://mgr.lan:8081\\n')"]


def run_child(qtbot, log: Path) -> None:
    child = EchoChild(log)
    with qtbot.waitSignal(child.exited, timeout=20000):
        child.start([], {})
    child.wanted = False  # no restart


@pytest.mark.timeout(60)
def test_a_new_log_is_private(qtbot, tmp_path: Path, session_umask: None) -> None:
    log = tmp_path / "share" / "tablao" / "tray-worker" / "worker.log"
    run_child(qtbot, log)
    assert log.read_text() == "signed on to http://mgr.lan:8081\n"
    assert mode(log) == 0o600
    assert mode(log.parent) == 0o700 and mode(log.parent.parent) == 0o700


@pytest.mark.timeout(60)
def test_a_log_left_readable_by_an_older_version_is_made_private(qtbot, tmp_path: Path, session_umask: None) -> None:
    """The file is made 0600; the folder, which the tray did not create (a shared --data-dir), keeps its mode."""
    log = tmp_path / "tray-worker" / "worker.log"
    log.parent.mkdir(mode=0o755)
    log.write_text("before\n")
    log.chmod(0o644)
    run_child(qtbot, log)
    assert log.read_text() == "before\nsigned on to http://mgr.lan:8081\n"  # appended, not replaced
    assert (mode(log), mode(log.parent)) == (0o600, 0o755)


def test_show_log_makes_a_private_file_too(tmp_path: Path, session_umask: None, monkeypatch) -> None:
    from app.qt import QDesktopServices
    from app.tray.app import TrayApp

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    fake: Any = type("Fake", (), {"log_path": tmp_path / "tray-worker" / "worker.log"})()
    TrayApp.show_log(fake)
    assert opened == [str(fake.log_path)]
    assert (mode(fake.log_path), mode(fake.log_path.parent)) == (0o600, 0o700)

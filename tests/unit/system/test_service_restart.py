"""`tablao service install` over an installed service restarts it with the new file (systemd's `enable --now` left
the running one on its old flags), and `tablao service remove` stops the service, `--no-start` or not (it deleted
the file and left the service running). systemctl and launchctl are stand-ins that keep what runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.system import cli

pytestmark = pytest.mark.timeout(60)


class FakeServiceManager:
    """systemctl or launchctl as far as install and remove use them: which file's flags run, and what is enabled."""

    def __init__(self, unit: Path, platform: str) -> None:
        self.unit, self.platform = unit, platform
        self.running: str | None = None  # the file's text the running service was started from
        self.enabled = False
        self.calls: list[list[str]] = []

    def run(self, command: list[str], check: bool = False, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        verb = next(a for a in command[1:] if not a.startswith("--"))
        code = 0
        if verb in ("restart", "bootstrap") or (verb == "enable" and "--now" in command):
            if verb == "bootstrap" and self.running is not None:
                code = 5  # launchd: the label is loaded already
            elif verb == "restart" or self.running is None:  # `enable --now` leaves a running service as it is
                self.running = self.unit.read_text()
        elif verb in ("bootout", "disable") and (verb == "bootout" or "--now" in command):
            code = 0 if self.running is not None or verb == "disable" else 3
            self.running = None
        if verb == "enable" or verb == "bootstrap":
            self.enabled = code == 0
        elif verb in ("disable", "bootout"):
            self.enabled = False
        if check and code:
            raise subprocess.CalledProcessError(code, command)
        return subprocess.CompletedProcess(command, code)


@pytest.fixture(params=["systemd", "launchd"])
def manager(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeServiceManager:
    unit = tmp_path / "units" / ("tablao-server.service" if request.param == "systemd" else "org.tablao.server.plist")
    fake = FakeServiceManager(unit, request.param)
    monkeypatch.setattr(cli, "service_path", lambda _spec, _platform, _root: unit)  # never the real folders
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")  # the module cli.py calls them from
    monkeypatch.setattr(subprocess, "run", fake.run)
    return fake


def _service(manager: FakeServiceManager, action: str, tmp_path: Path, *extra: str) -> int:
    argv = [action, "server", "--user", "--platform", manager.platform, *extra]
    if action == "install":
        argv[5:5] = ["--data-dir", str(tmp_path / "data")]
    return cli.main(argv)


def test_installing_again_restarts_the_service_with_the_new_flags(
    manager: FakeServiceManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _service(manager, "install", tmp_path, "--", "--port", "8470") == 0
    assert manager.running is not None and "8470" in manager.running and manager.enabled
    assert "tablao-server: enabled and started" in capsys.readouterr().out
    assert _service(manager, "install", tmp_path, "--", "--port", "8471") == 0
    assert manager.running is not None and "8471" in manager.running and "8470" not in manager.running
    assert manager.enabled
    assert "tablao-server: enabled and restarted with the new file" in capsys.readouterr().out


def test_installing_again_with_no_start_leaves_the_service_and_says_so(
    manager: FakeServiceManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _service(manager, "install", tmp_path, "--", "--port", "8470") == 0
    capsys.readouterr()
    assert _service(manager, "install", tmp_path, "--no-start", "--", "--port", "8471") == 0
    assert manager.running is not None and "8470" in manager.running  # asked not to: as it was
    assert "not restarted: if it runs, it keeps its old flags" in capsys.readouterr().out


@pytest.mark.parametrize("no_start", [[], ["--no-start"]])
def test_removing_stops_the_service(
    manager: FakeServiceManager, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_start: list[str]
) -> None:
    assert _service(manager, "install", tmp_path) == 0
    assert manager.running is not None
    capsys.readouterr()
    assert _service(manager, "remove", tmp_path, *no_start) == 0
    assert manager.running is None and not manager.enabled and not manager.unit.exists()
    out = capsys.readouterr().out
    assert "tablao-server: stopped and disabled" in out and "is kept" in out


def test_removing_a_service_that_was_never_started_says_it_was_not_running(
    manager: FakeServiceManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _service(manager, "install", tmp_path, "--no-start") == 0
    assert manager.running is None and manager.calls == []
    assert _service(manager, "remove", tmp_path) == 0
    assert not manager.unit.exists()
    if manager.platform == "launchd":
        assert "exited with 3 (it was not running, or could not be stopped)" in capsys.readouterr().out

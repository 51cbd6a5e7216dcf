"""Ctrl-C (SIGINT) and SIGTERM stop the tray on a real X server (Xvfb + openbox + trayer) the same clean way:
its worker is told to stop and is gone when the tray exits, with 128 + the signal and no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.services import ROOT, child_env
from tests.support.xserver import XServer

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


def closed_port() -> int:
    with socket.socket() as s:  # an ephemeral port nothing listens on: the worker retries there for ever
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_tray_and_its_worker(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """From an audit: Ctrl-C in the terminal did nothing (the Qt loop sits in C, where Python's KeyboardInterrupt
    never comes), and SIGTERM killed the tray without telling its worker."""
    missing = [p for p in ("Xvfb", "openbox", "trayer") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/system-deps.sh installs them)")
    secret = tmp_path / "secret"
    secret.write_text("s" * 32)
    with XServer(tmp_path, with_tray=True) as x:
        env = child_env(DISPLAY=x.env["DISPLAY"], HOME=str(tmp_path / "home"),
                        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
                        PYTHON_KEYRING_BACKEND="tests.support.file_keyring.TestKeyring",
                        TABLAO_TEST_KEYRING=str(tmp_path / "keyring.json"))  # fmt: skip
        for key in ("QT_QPA_PLATFORM", "XDG_SESSION_ID", "WAYLAND_DISPLAY"):
            env.pop(key, None)
        argv = [sys.executable, "-m", "app.cli", "tray", "--manager", f"http://127.0.0.1:{closed_port()}",
                "--name", "artist-ws", "--data-dir", str(tmp_path / "tray"), "--registration-secret-file",
                str(secret), "--no-save"]  # fmt: skip
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            workers: list[psutil.Process] = []
            while time.monotonic() < deadline and proc.poll() is None and not workers:
                workers = [p for p in psutil.Process(proc.pid).children() if "worker" in p.cmdline()]
                time.sleep(0.2)
            assert workers, proc.communicate()[1].decode() if proc.poll() is not None else "no worker started"
            time.sleep(1.0)  # the tray's loop is running
            os.kill(proc.pid, sig)  # the tray only: its worker must be stopped by the tray
            _, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == code, err.decode()
        assert b"Traceback" not in err, err.decode()
        psutil.wait_procs(workers, timeout=5)
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)

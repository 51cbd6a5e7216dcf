"""The command line `tablao service install` writes into a unit really runs the Server, which stops on SIGTERM."""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from services.system import cli
from tests.support.ports import free_port, wait_http
from tests.support.services import child_env


@pytest.mark.timeout(90)
def test_the_units_command_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "server-data"
    argv = ["install", "server", "--root", str(tmp_path / "root"), "--data-dir", str(data), "--run-as", "daemon"]
    assert cli.main([*argv, "--", "--host", "127.0.0.1", "--port", str(port)]) == 0
    text = (tmp_path / "root/etc/systemd/system/tablao-server.service").read_text()
    [exec_start] = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]
    data.mkdir()
    service = subprocess.Popen(shlex.split(exec_start), cwd=data, env=child_env(), stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health", timeout=60, proc=service)
        assert (data / "admin.token").exists(), "the Server keeps its data where the unit says"
        service.send_signal(signal.SIGTERM)  # what systemd sends (KillSignal=SIGTERM)
        # Well within TimeoutStopSec; uvicorn re-raises SIGTERM after its clean shutdown, and systemd counts an exit
        # by SIGTERM as a clean one (SuccessExitStatus), so it does not restart the service.
        assert service.wait(30) in (0, -signal.SIGTERM)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()

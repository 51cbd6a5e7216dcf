"""`tablao server --host '[::1]'` listens on the IPv6 loopback (uvicorn was given the brackets and failed)."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.ports import wait_http
from tests.support.services import ROOT, START_TIMEOUT, child_env, tablao_command


def _free_ipv6_loopback_port() -> int:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
            return int(sock.getsockname()[1])
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")


def test_a_bracketed_ipv6_host_is_listened_on(tmp_path: Path) -> None:
    port = _free_ipv6_loopback_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            tablao_command("server", "--data-dir", str(tmp_path / "s"), "--host", "[::1]", "--port", str(port)),
            cwd=ROOT, env=child_env(), stdout=log, stderr=log,
        )  # fmt: skip
    try:
        try:
            wait_http(f"http://[::1]:{port}/api/v1/health", timeout=START_TIMEOUT, proc=proc)
        except Exception as exc:
            raise AssertionError(f"the Server did not start:\n{log_path.read_text()[-3000:]}") from exc
        assert f"Tablao Server on http://[::1]:{port} " in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

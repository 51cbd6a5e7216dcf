"""Ctrl-C in a client command (the way to stop `tablao log -f`, or a submission that takes long) ends it without a
traceback, exit 130; an interrupted submission says the job may have been made and the key that gets it."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.support.services import ROOT, child_env


class _Slow(http.server.BaseHTTPRequestHandler):
    """Takes every request and answers none for a while, as a Server storing a big job."""

    arrived: ClassVar[threading.Event] = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _hold(self) -> None:
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        self.arrived.set()
        time.sleep(20)

    do_GET = do_POST = _hold


@pytest.fixture
def slow_server() -> Iterator[str]:
    _Slow.arrived = threading.Event()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _interrupted(args: list[str], server: str) -> subprocess.CompletedProcess[str]:
    env = child_env(TABLAO_SERVER=server, TABLAO_TOKEN="tbl_test")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert _Slow.arrived.wait(30), "the command sent no request"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_an_interrupted_submission_names_the_key_that_gets_its_job(slow_server: str, tmp_path: Path) -> None:
    """It was a traceback, and the same command again made a second 300,000-task job."""
    job = tmp_path / "job.json"
    job.write_text('{"name": "big", "type": "exec", "settings": {"command": ["true"], "frames": "1-300000"}}')
    done = _interrupted(["submit", str(job), "--idempotency-key", "shot-010-big"], slow_server)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "tablao submit: interrupted; the job may have been made: run the command again with --idempotency-key "
        "shot-010-big to get it rather than a second one"
    )


def test_an_interrupted_command_ends_quietly(slow_server: str) -> None:
    done = _interrupted(["jobs"], slow_server)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")

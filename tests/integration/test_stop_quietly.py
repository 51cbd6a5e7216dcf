"""A stop cancels the requests still open (long-polled claims, event streams) by design: the Server's log says so
in one line, not an ERROR and a traceback for each of them."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess


@pytest.mark.timeout(120)
def test_a_stop_with_long_polls_and_event_streams_open_logs_one_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", None).start()
    token = add_manager(server, "m1")
    opened = threading.Barrier(3)

    def claim() -> None:
        opened.wait(10)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 20}
        with contextlib.suppress(httpx.HTTPError):  # ended by the stop, as the Manager's own claim would be
            httpx.post(f"{server.url}{API}/manager/claim", json=body, headers=headers, timeout=30)

    def events() -> None:
        try:
            with httpx.stream("GET", f"{server.url}{API}/events", headers=server.headers(), timeout=30) as stream:
                opened.wait(10)
                for _ in stream.iter_lines():
                    pass
        except httpx.HTTPError:
            pass

    clients = [threading.Thread(target=claim), threading.Thread(target=events)]
    for c in clients:
        c.start()
    opened.wait(10)
    time.sleep(1.0)  # both wait at the Server
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(30)
    for c in clients:
        c.join(30)
    log = server.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    # one INFO line, in the Server's own format (uvicorn's logger goes through its handler)
    said = r"INFO uvicorn.error: stopping: \d+ open request\(s\) ended; their clients try again"
    assert re.search(said, log), log[-3000:]

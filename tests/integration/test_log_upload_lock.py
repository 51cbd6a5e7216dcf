"""A slow full-log upload from a Manager does not hold SQLite's write lock while its body trickles in.

The route once checked the Manager's token in a write session opened before it read the body: a client that
sent 10 of 100,000 declared bytes kept every other write of the farm waiting 30 s, then failing with a 500.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_server_jobs import render_job
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(90)

WRITE_WITHIN = 5.0  # seconds; the old route kept this write waiting 30 s


@pytest.fixture
def stalled_upload(fresh_server: ServerProcess) -> Iterator[socket.socket]:
    """A Manager's log upload that declared 100,000 bytes and sent 10, left open."""
    token = add_manager(fresh_server, "slow-uploader")
    head = (
        f"POST {API}/manager/tasks/1/log HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{fresh_server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 100000\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", fresh_server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"0123456789")
        time.sleep(1.0)  # the Server has the headers and is in the route, waiting for the rest of the body
        yield sock


def test_a_write_goes_through_while_a_log_upload_stalls(
    fresh_server: ServerProcess, stalled_upload: socket.socket
) -> None:
    started = time.monotonic()
    try:
        r = httpx.post(
            f"{fresh_server.url}{API}/jobs",
            json=render_job(name="not kept waiting"),
            headers=fresh_server.headers(),
            timeout=WRITE_WITHIN,
        )
    except httpx.TimeoutException:
        pytest.fail(f"a job submission waited over {WRITE_WITHIN} s behind a stalled log upload")
    assert r.status_code == 201, r.text
    assert time.monotonic() - started < WRITE_WITHIN
    # the upload is still waiting for its body, not answered
    stalled_upload.settimeout(0.2)
    with pytest.raises(TimeoutError):
        stalled_upload.recv(1)


def test_a_bad_token_is_still_refused_after_the_body(fresh_server: ServerProcess) -> None:
    r = httpx.post(
        f"{fresh_server.url}{API}/manager/tasks/1/log",
        content=b"lines\n",
        headers={"Authorization": "Bearer not-a-manager-token"},
        timeout=10,
    )
    assert r.status_code == 401, r.text
    assert r.json()["errors"][0]["field"] == "token"

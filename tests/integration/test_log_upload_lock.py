"""A slow full-log upload from a Manager does not hold SQLite's write lock while its body trickles in; the
route takes logs past the body limit of every other route, and only from a Manager.

The route once checked the Manager's token in a write session opened before it read the body: a client that
sent 10 of 100,000 declared bytes kept every other write of the farm waiting 30 s, then failing with a 500.
"""

from __future__ import annotations

import contextlib
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
    task_id = asked_task(fresh_server, token, "stalled-upload")
    head = (
        f"POST {API}/manager/tasks/{task_id}/log HTTP/1.1\r\n"
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


def asked_task(server: ServerProcess, token: str, task_type: str) -> int:
    """A task the Manager holding `token` claimed and was asked for the full log of (only such a log is taken)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
        body = {"name": "long log", "type": "exec", "settings": {"command": ["true"], "task_type": task_type}}
        assert admin.post("/jobs", json=body).status_code == 201
        r = httpx.post(f"{server.url}{API}/manager/claim", json={"capacity": 1, "task_types": [task_type]},
                       headers=headers, timeout=30)  # fmt: skip
        (task,) = r.json()["tasks"]
        assert admin.post(f"/tasks/{task['id']}/log/request").status_code == 202
        return int(task["id"])


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


def _answer(port: int, head: str, body: bytes = b"") -> bytes:
    """The Server's whole answer to a request of which only the headers (and `body`) are sent; what came of it
    if the answer is not complete within 5 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        with contextlib.suppress(TimeoutError):
            while not _complete(data) and (chunk := sock.recv(65536)):
                data += chunk
        return data


def _complete(data: bytes) -> bool:
    head, found, rest = data.partition(b"\r\n\r\n")
    if not found:
        return False
    lengths = [line.split(b":", 1)[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return len(rest) >= int(lengths[0]) if lengths else False


def _head(path: str, token: str, length: int, content_type: str = "text/plain") -> str:
    return (
        f"POST {API}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    )


def test_a_log_past_the_body_limit_is_taken_on_its_route_only(fresh_server: ServerProcess) -> None:
    token = add_manager(fresh_server, "uploader")
    manager = httpx.Client(base_url=f"{fresh_server.url}{API}/manager", headers={"Authorization": f"Bearer {token}"})
    admin = httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30)
    try:
        task = {"id": asked_task(fresh_server, token, "upload-limit")}
        log = b"".join(b"line %07d %s\n" % (i, b"y" * 100) for i in range(90_000))  # 9.5 MB
        r = manager.post(f"/tasks/{task['id']}/log", content=log, headers={"Content-Type": "text/plain"}, timeout=60)
        assert r.status_code == 204, r.text
        assert admin.get(f"/tasks/{task['id']}/log-source").json()["server_copy_bytes"] == len(log)
        assert admin.get(f"/tasks/{task['id']}/log", params={"tail": 200}).text.endswith(
            "line 0089999 " + "y" * 100 + "\n"
        )
        # the log's own limit (64 MiB), told before anything is read
        over = _answer(fresh_server.port, _head(f"/manager/tasks/{task['id']}/log", token, 64 * 1024 * 1024 + 1))
        assert over.startswith(b"HTTP/1.1 413") and b"over the limit of 67108864 bytes" in over
    finally:
        manager.close()
        admin.close()
    # every other route keeps the services' limit, the Manager link's included
    other = _answer(fresh_server.port, _head("/manager/updates", token, 9 * 1024 * 1024, "application/json"))
    assert other.startswith(b"HTTP/1.1 413") and b"over the limit of 8388608 bytes" in other


def test_the_token_is_checked_before_a_log_is_read(fresh_server: ServerProcess) -> None:
    # a body far bigger than any other route's is read for a Manager only: without one, 401 with none of it read
    answer = _answer(fresh_server.port, _head("/manager/tasks/1/log", "not-a-manager-token", 1024 * 1024), b"abc")
    assert answer.startswith(b"HTTP/1.1 401"), answer

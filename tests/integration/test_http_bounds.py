"""Both services bound what a client sends below the application (services/protocol/http_protocol.py): a request
head over 64 KiB is a 431, a request that stops half-way a 408, each answered at once and the connection closed,
with no credentials needed to try. Before, a 300 MB header grew a Server by 600 MB and stalled its other
clients, and a body that stopped after 7 bytes held its connection for good."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.manager import ManagerProcess, add_manager
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command

pytestmark = pytest.mark.timeout(120)
IDLE = {"TABLAO_REQUEST_IDLE_SECONDS": "1.5"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None, env=IDLE).start()
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager", env=IDLE
    ).start()
    yield {"server": server.url, "manager": mgr.url}
    mgr.stop()
    server.stop()


def _answer(sock: socket.socket) -> tuple[int, dict[str, object], bool]:
    """The status and JSON body of the one answer on `sock`, and whether the service closed the connection."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), True


@pytest.mark.parametrize("service", ["server", "manager"])
def test_a_head_over_64_kib_is_a_431_before_it_is_all_read(services: dict[str, str], service: str) -> None:
    port = httpx.URL(services[service]).port
    assert port is not None
    pid = next(
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
    )
    before = psutil.Process(pid).memory_info().rss
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nx-a: ")
        sent = 0
        try:
            while sent < 200 * 1024 * 1024:  # the service stops reading long before
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        status, body, closed = _answer(sock)
    assert status == 431 and closed
    assert body["errors"] == [{"field": "headers", "message": body["detail"]}]
    assert sent < 32 * 1024 * 1024, "the service kept reading the head"
    assert psutil.Process(pid).memory_info().rss - before < 50 * 1024 * 1024
    # a head well within the bound is served as before
    assert httpx.get(services[service] + "/api/v1/health", headers={"x-a": "a" * 32_000}).status_code == 200


@pytest.mark.parametrize("service", ["server", "manager"])
@pytest.mark.parametrize("stops_in", ["head", "body"])
def test_a_request_that_stops_half_way_is_a_408_and_closed(
    services: dict[str, str], service: str, stops_in: str
) -> None:
    port = httpx.URL(services[service]).port
    assert port is not None
    public = b"/api/v1/auth/login" if service == "server" else b"/api/v1/worker/register"  # read with no credentials
    partial = b"POST " + public + b" HTTP/1.1\r\nhost: x\r\n"
    if stops_in == "body":
        partial += b'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"user'
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(partial)
        started = time.monotonic()
        status, body, closed = _answer(sock)
    assert status == 408 and closed and 1.0 < time.monotonic() - started < 8
    assert "nothing more of it came for 1.5 s" in str(body["detail"])
    # a slow request that keeps coming is not cut
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for piece in (b"GET /api/v1/health HTTP/1.1\r\n", b"host: x\r\n", b"x-slow: 1\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.7)
        sock.settimeout(10)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("role", ["server", "manager"])
def test_a_bad_idle_setting_is_one_line_at_start(tmp_path: Path, role: str) -> None:
    args = ["server", "--data-dir", str(tmp_path / "s"), "--port", "0"]
    if role == "manager":
        token = tmp_path / "t"
        token.write_text("x")
        # on a free port, not the default one: a farm running on this machine holds that
        args = ["manager", "--server", "http://127.0.0.1:9", "--token-file", str(token), "--data-dir", str(tmp_path),
                "--port", "0"]  # fmt: skip
    env = child_env(TABLAO_REQUEST_IDLE_SECONDS="soon")
    out = subprocess.run(tablao_command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"tablao {role}: TABLAO_REQUEST_IDLE_SECONDS: 'soon' is not a number"


@pytest.mark.parametrize("service", ["server", "manager"])
def test_a_request_the_parser_cannot_read_is_a_400_in_the_usual_shape(services: dict[str, str], service: str) -> None:
    """uvicorn answered these in plain text: 'Invalid HTTP request received.'"""
    port = httpx.URL(services[service]).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nlast-event-id: zz\x01\r\n\r\n")
        status, body, closed = _answer(sock)
    assert status == 400 and closed
    assert body["errors"] == [{"field": "request", "message": body["detail"]}]
    assert str(body["detail"]).startswith("the request could not be read as HTTP")


@pytest.mark.parametrize("service", ["server", "manager"])
def test_a_connection_that_sends_nothing_is_closed(services: dict[str, str], service: str) -> None:
    port = httpx.URL(services[service]).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(100) == b""  # closed, with nothing to answer
        assert 1.0 < time.monotonic() - started < 8

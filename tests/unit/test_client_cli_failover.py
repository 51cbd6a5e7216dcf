"""`tablao` client commands given several Servers, the first of which hangs (it takes connections and never
answers: a Server stopped, swapping, a paused VM): the command passes it over within seconds, sends nothing that
could be done twice to it, and the next command starts at the Server that answered."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import client_cli
from services.protocol import server_memory
from tests.support.services import ServerProcess
from tests.support.silent_servers import taken


@pytest.fixture
def hung() -> Iterator[socket.socket]:
    """A port that takes connections (the kernel's backlog) and never answers: a Server stopped with SIGSTOP."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


def url_of(listener: socket.socket) -> str:
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_server: ServerProcess) -> None:
    monkeypatch.setenv("TABLAO_TOKEN", fresh_server.admin_token)
    monkeypatch.delenv("TABLAO_SERVER", raising=False)
    # short enough that the test ends when the command waits for the hung Server, long past any real answer here
    monkeypatch.setenv("TABLAO_CLIENT_DEADLINE", "20")
    monkeypatch.setattr(server_memory, "state_file", lambda: tmp_path / "state" / server_memory.FILE_NAME)


def timed_command(command: str, *args: str) -> tuple[int, float]:
    start = time.monotonic()
    code = client_cli.main(command, list(args))
    return code, time.monotonic() - start


def test_a_command_passes_over_a_server_that_hangs_within_seconds(
    hung: socket.socket, fresh_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """From an audit: every command waited its whole deadline (60 s) at the hung Server, then failed."""
    code, took = timed_command("jobs", "--server", f"{url_of(hung)},{fresh_server.url}")
    assert code == 0, capsys.readouterr().err
    assert "no jobs" in capsys.readouterr().out
    assert took < 8, f"{took:.1f} s"
    assert [said.split(b"\r\n")[0] for said in taken(hung)] == [b"GET /api/v1/health HTTP/1.1"]


def test_the_next_command_starts_at_the_server_that_answered(
    hung: socket.socket, fresh_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = f"{url_of(hung)},{fresh_server.url}"
    assert timed_command("jobs", "--server", servers)[0] == 0
    taken(hung)
    code, took = timed_command("jobs", "--server", servers)
    assert code == 0, capsys.readouterr().err
    assert taken(hung) == []  # not even asked for its health
    assert took < 2.5, f"{took:.1f} s"
    # the same addresses spelled otherwise (spaces, a slash at the end) are the same farm's
    assert timed_command("jobs", "--server", f"{url_of(hung)}, {fresh_server.url}/")[0] == 0
    assert taken(hung) == []


def test_a_submission_reaches_the_next_server_once_and_the_hung_one_never(
    hung: socket.socket, fresh_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"name": "past the hung one", "type": "exec", "settings": {"command": ["true"], "frames": "1"}})
    )
    code, took = timed_command("submit", "--server", f"{url_of(hung)},{fresh_server.url}", str(job))
    assert code == 0, capsys.readouterr().err
    assert took < 8, f"{took:.1f} s"
    assert not any(b"POST" in said for said in taken(hung))
    jobs = httpx.get(f"{fresh_server.url}/api/v1/jobs", headers=fresh_server.headers(), timeout=10).json()["items"]
    assert [j["name"] for j in jobs] == ["past the hung one"]


def test_a_remembered_server_that_stops_answering_is_passed_over_and_forgotten(
    fresh_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Server that answered last went away: the command goes on to the next (the first, here), and the one
    after starts there."""
    with socket.socket() as second:
        second.bind(("127.0.0.1", 0))
        second.listen(16)
        servers = f"{fresh_server.url},{url_of(second)}"
        urls = [fresh_server.url, url_of(second)]
        server_memory.ServerMemory().keep(urls, 1)  # as if the second had answered the last command
        assert server_memory.ServerMemory().recall(urls) == 1
        code, took = timed_command("jobs", "--server", servers)
        assert code == 0, capsys.readouterr().err
        assert len(taken(second)) == 1 and took < 8
        assert server_memory.ServerMemory().recall(urls) is None  # the first again: nothing to remember

"""The client commands (`tablao jobs|job|submit|demo`) facing no Server: one line naming the address tried (and
the others given), never the token; how to start the local farm when its address was the one refused."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from services import client_cli, demo
from services.localfarm import records
from tests.support.services import ServerProcess

TOKEN = "tbl_secret_do_not_show"


def _closed() -> str:
    """http://127.0.0.1:PORT where nothing listens (a port just bound and let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def closed_url() -> str:
    return _closed()


def _local_farm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --server, no TABLAO_TOKEN: the local farm's admin token, as a newcomer's client finds it."""
    monkeypatch.delenv("TABLAO_TOKEN")
    monkeypatch.setenv("TABLAO_DATA_DIR", str(tmp_path))
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "admin.token").write_text(TOKEN + "\n")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_TOKEN", TOKEN)
    monkeypatch.delenv("TABLAO_SERVER", raising=False)
    monkeypatch.setenv("TABLAO_CLIENT_DEADLINE", "5")


def _argv(command: str, tmp_path: Path) -> list[str]:
    if command == "submit":
        job = tmp_path / "job.json"
        job.write_text(json.dumps({"name": "a", "type": "exec", "settings": {}, "priority": 50}))
        return [str(job)]
    return ["1"] if command == "job" else []


def _line(err: str) -> str:
    assert "Traceback" not in err and TOKEN not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["jobs", "job", "submit"])
def test_an_explicit_server_that_refuses_is_named(
    command: str, closed_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert client_cli.main(command, [*_argv(command, tmp_path), "--server", closed_url]) == 1
    line = _line(capsys.readouterr().err)
    assert line == f"tablao {command}: cannot reach the Server: connection refused (tried {closed_url})"


def test_a_server_from_the_environment_is_named_without_the_local_farm_hint(
    closed_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLAO_SERVER", closed_url + "/")
    assert client_cli.main("jobs", []) == 1
    line = _line(capsys.readouterr().err)
    assert f"(tried {closed_url})" in line and "local farm" not in line


def test_demo_names_the_server_it_tried(closed_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--server", closed_url, "--no-wait"]) == 1
    line = _line(capsys.readouterr().err)
    assert line == f"tablao demo: cannot reach the Server: connection refused (tried {closed_url})"


def test_several_servers_none_answering_are_all_named(closed_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    others = [_closed() for _ in range(4)]
    assert client_cli.main("jobs", ["--server", ", ".join([closed_url, *others])]) == 1
    line = _line(capsys.readouterr().err)
    assert line == (
        f"tablao jobs: cannot reach the Server: connection refused (tried {closed_url}, {others[0]}, {others[1]} "
        "and 2 more)"
    )


def test_a_server_that_refuses_hands_the_command_to_the_next_one(
    closed_url: str, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No connection was made to the first: nothing was sent, so the same request goes to the next at once."""
    monkeypatch.setenv("TABLAO_TOKEN", fresh_server.admin_token)
    assert client_cli.main("jobs", ["--server", f"{closed_url},{fresh_server.url}"]) == 0
    assert "no jobs" in capsys.readouterr().out


def test_the_default_local_farm_address_says_how_to_start_the_farm(
    closed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local farm's admin token and, no farm recorded, the default address."""
    _local_farm_token(tmp_path, monkeypatch)
    monkeypatch.setattr(client_cli, "DEFAULT_SERVER", closed_url)  # 8470 may be a real farm's on this machine
    assert client_cli.main("jobs", []) == 1
    line = _line(capsys.readouterr().err)
    assert line == (
        f"tablao jobs: cannot reach the Server: connection refused (tried {closed_url}); is the local farm running? "
        "start it with `tablao all-in-one` (`make run` in a source checkout), or give --server"
    )


def test_a_recorded_local_farm_that_refuses_says_how_to_start_the_farm(
    closed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A farm's record (it moved with `tablao all-in-one --port`) whose Server does not answer."""
    _local_farm_token(tmp_path, monkeypatch)
    monkeypatch.setattr(records, "running", lambda _farm_dir: records.FarmRecord(server_url=closed_url))
    assert client_cli.main("jobs", []) == 1
    line = _line(capsys.readouterr().err)
    assert f"(tried {closed_url}); is the local farm running? start it with `tablao all-in-one`" in line


def test_an_address_is_shown_without_user_password_or_query() -> None:
    assert client_cli._address("http://ana:s3cret@h:8470/farm/?token=tbl_x#top") == "http://h:8470/farm"
    assert client_cli._address("https://[::1]:8470/") == "https://[::1]:8470"
    long = client_cli._address("http://h:1/" + "a" * 500)
    assert len(long) == client_cli.MAX_URL_SHOWN + 1 and long.endswith("…")
    assert client_cli._address("http://h:1/\x1b[2J") == "http://h:1/\\x1b[2J"  # escaped as shown() does


def test_a_users_token_goes_to_the_running_local_farm_too(
    closed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a newcomer's first run: `make run PORT=18470`, then `tablao tokens create ana > ana.token` and
    `tablao jobs --token-file ana.token` tried 8470, while the farm ran on 18470."""
    token = tmp_path / "ana.token"
    token.write_text("tbl_not_checked_before_the_connection\n")
    monkeypatch.setattr(records, "running", lambda _farm_dir: records.FarmRecord(server_url=closed_url))
    for argv, env in ((["--token-file", str(token)], None), ([], "tbl_from_the_environment")):
        if env is not None:
            monkeypatch.setenv("TABLAO_TOKEN", env)
        assert client_cli.main("jobs", argv) == 1
        assert f"(tried {closed_url})" in _line(capsys.readouterr().err)


def test_a_port_that_closes_without_a_word_of_http_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    """Another protocol's port (AMQP, say) that closes the connection: the reason after the colon was empty."""
    import struct
    import threading

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        def hang_up() -> None:
            for _ in range(3):  # the client may try again
                try:
                    conn, _ = listener.accept()
                except OSError:  # the test is over: the listener closed
                    return
                conn.recv(1024)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
                conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        assert client_cli.main("jobs", ["--server", url]) == 1
        listener.shutdown(socket.SHUT_RDWR)  # wakes an accept still waiting
        thread.join(5)
    line = _line(capsys.readouterr().err)
    assert line.startswith("tablao jobs: cannot reach the Server: the connection was closed without an HTTP answer"), (
        line
    )


def test_tls_mistakes_either_way_say_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    """From a newcomer's audit: http:// to a Server serving https said only that it disconnected, and an https
    Server whose CA the client does not know gave OpenSSL's words with no word of --ca-bundle."""
    import http.server
    import ssl
    import threading

    import trustme

    class _Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    where = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        assert client_cli.main("jobs", ["--server", f"http://{where}"]) == 1
        assert _line(capsys.readouterr().err).endswith(f"; if this Server uses TLS, try https://{where}")
        assert client_cli.main("jobs", ["--server", f"https://{where}"]) == 1
        line = _line(capsys.readouterr().err)
        assert line.endswith("; give the CA that signed the Server's certificate with --ca-bundle or TABLAO_CA_BUNDLE")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("deadline", [None, "2"])
def test_a_server_that_takes_the_connection_and_says_nothing_is_said_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deadline: str | None
) -> None:
    """From a CLI audit: "cannot reach the Server: ReadTimeout" after 30 s under a 60 s deadline, for a Server that
    was reached; the deadline's own words came only when it was the shorter."""
    from services.protocol import server_transport

    real = server_transport.ServerTransport.__init__

    def quick(self: Any, *args: Any, **kwargs: Any) -> None:  # httpx's timeouts at 1 s, under the 2 s deadline
        real(self, *args, **{**kwargs, "timeout": 1.0})

    monkeypatch.setattr(server_transport.ServerTransport, "__init__", quick)
    if deadline is None:  # no deadline (as a library caller): httpx's read timeout
        monkeypatch.delenv("TABLAO_CLIENT_DEADLINE")
        monkeypatch.setattr(client_cli, "deadline", lambda command: None)
    else:
        monkeypatch.setenv("TABLAO_CLIENT_DEADLINE", deadline)
    with socket.socket() as listener:  # takes connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert client_cli.main("jobs", ["--server", url]) == 1
    line = _line(capsys.readouterr().err)
    assert "ReadTimeout" not in line and "cannot reach" not in line, line
    if deadline is None:
        assert line.startswith("tablao jobs: the Server did not answer within 1 s (tried "), line
    else:
        assert "did not come in whole within 2 s" in line, line

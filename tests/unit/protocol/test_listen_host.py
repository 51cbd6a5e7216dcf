"""`--host` of the Server and the Manager: the address to bind, an IPv6 one's URL brackets stripped."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.manager.cli import parse_args
from services.manager.config import ManagerConfig
from services.protocol import tls
from services.protocol.cli_args import BadValue, listen_host, url_host
from services.server.cli import build_parser


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("localhost", "localhost"),
        ("render-a.lan", "render-a.lan"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::]", "::"),
        ("[fe80::1%eth0]", "fe80::1%eth0"),
        ("::", "::"),
    ],
)
def test_the_address_to_bind_is_taken_without_brackets(given: str, taken: str) -> None:
    assert listen_host(given) == taken


@pytest.mark.parametrize(
    "bad", ["", "[]", "[::1", "::1]", "[[::1]]", "[localhost]", "[127.0.0.1]", "a b", " ::1", "host/8", "a\\b"]
)
def test_a_malformed_host_is_refused(bad: str) -> None:
    with pytest.raises(BadValue):
        listen_host(bad)


def test_url_host_brackets_an_ipv6_address() -> None:
    assert [url_host(h) for h in ("::1", "127.0.0.1", "render-a.lan")] == ["[::1]", "127.0.0.1", "render-a.lan"]


def test_the_server_binds_the_value_it_checks(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--host", "[::1]"])
    assert args.host == "::1"
    assert tls.listen_problem(args.host, None, None, insecure_http=False) is None
    assert build_parser().parse_args([]).host == "127.0.0.1"
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--host", "a b"])
    assert exc.value.code == 2
    assert "argument --host: 'a b' is not an address to listen on" in capsys.readouterr().err


def test_the_manager_binds_the_value_it_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--server", "http://127.0.0.1:8470", "--token-file", str(tmp_path / "token")]
    args = parse_args([*base, "--host", "[::1]"])
    assert args.host == "::1"
    assert parse_args(base).host == "127.0.0.1"
    with pytest.raises(SystemExit) as exc:
        parse_args([*base, "--host", ""])
    assert exc.value.code == 2
    assert "argument --host: an address to listen on is needed" in capsys.readouterr().err


def test_the_managers_public_url_brackets_an_ipv6_host() -> None:
    host = listen_host("[::1]")
    cfg = ManagerConfig.from_env("http://127.0.0.1:8470", "t", host=host, port=8471)
    assert cfg.listening_url(8471, https=False) == "http://[::1]:8471"

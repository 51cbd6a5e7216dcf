"""What a standalone Server and Manager say at their start: a port another program holds is one line naming
it, before anything is made (it was uvicorn's words after the start was announced and the database made); the
Manager says where its worker registration secret is, which the admin gives every worker. And a second Manager
started on one Manager's token takes it over, the first saying it is refused."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.manager import ManagerProcess, add_manager
from tests.support.services import ROOT, ServerProcess, child_env
from tests.support.waiting import wait_for


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=child_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_server_on_a_held_port_says_so_before_making_anything(tmp_path: Path, held_port: int) -> None:
    done = _run("server", "--data-dir", str(tmp_path / "s"), "--port", str(held_port))
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.startswith(f"tablao server: cannot start: port {held_port} on 127.0.0.1, needed for the "
                                  "Server, is held by pid "), done.stderr  # fmt: skip
    assert done.stderr.rstrip().endswith("stop it or choose another port: --port N")
    assert not (tmp_path / "s" / "admin.token").exists() and not (tmp_path / "s" / "tablao-server.sqlite").exists()


def test_a_manager_on_a_held_port_says_so_and_one_started_names_its_secret(tmp_path: Path, held_port: int) -> None:
    token = tmp_path / "token"
    token.write_text("tbl_unused\n")
    args = ("manager", "--server", "http://127.0.0.1:1", "--token-file", str(token), "--data-dir", str(tmp_path / "m"))
    done = _run(*args, "--port", str(held_port))
    assert done.returncode == 2, done.stderr
    assert f"tablao manager: cannot start: port {held_port} on 127.0.0.1, needed for the Manager" in done.stderr
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "m1").start()
        try:
            said = mgr.log_path.read_text()
            assert f"(worker registration secret: {tmp_path / 'm1' / 'worker-registration.secret'})" in said, said
        finally:
            mgr.stop()
    finally:
        server.stop()


def test_a_second_manager_with_the_same_token_takes_it_over_and_the_first_says_it_is_refused(tmp_path: Path) -> None:
    """From a newcomer's audit: a second Manager started with a Manager's token ran beside the first, neither log
    said a word, and their batches shared one sequence (each one's taken for the other's repeats, dropped)."""
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    token = add_manager(server, "room-a")
    first = ManagerProcess(server.url, token, tmp_path / "first").start()
    second: ManagerProcess | None = None
    try:
        second = ManagerProcess(server.url, token, tmp_path / "second").start()
        wait_for(
            lambda: "another Manager took over the token of Manager 'room-a'" in first.log_path.read_text(),
            timeout=60, what="the first Manager to be refused",
        )  # fmt: skip
        assert "took over" not in second.log_path.read_text()
        assert "took over its token from the one heard" in server.log_path.read_text()
    finally:
        if second is not None:
            second.stop()
        first.stop()
        server.stop()


def test_a_server_given_a_local_farms_folder_names_the_farms_server_folder(tmp_path: Path) -> None:
    """From a newcomer's audit: it made a second, empty database there, and the admin commands then refused the
    folder for holding two, blaming earlier versions."""
    farm_server = tmp_path / "farm" / "server"
    farm_server.mkdir(parents=True)
    (farm_server / "tablao-server.sqlite").write_bytes(b"")
    done = _run("server", "--data-dir", str(tmp_path / "farm"), "--port", "0")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"tablao server: cannot start: {tmp_path / 'farm'} is a local farm's folder, whose Server keeps its database "
        f"in {farm_server}: give --data-dir {farm_server} for that Server, or run the whole farm with tablao "
        f"all-in-one --data-dir {tmp_path / 'farm'}\n"
    )
    assert not (tmp_path / "farm" / "tablao-server.sqlite").exists()


def test_a_manager_whose_token_or_server_address_is_wrong_says_so_and_does_not_start(tmp_path: Path) -> None:
    """From a newcomer's audit: a Manager given a wrong token (here the admin's, a common mix-up, and a made-up
    one) or a Manager's address for its Server's started, took workers and logged a refusal once a minute; each is
    now one line at its start. A Server that does not answer is still waited for (test_a_manager_on_a_held_port)."""
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        for i, text in enumerate([(tmp_path / "server" / "admin.token").read_text(), "tbl_made_up\n"]):
            token = tmp_path / f"token{i}"
            token.write_text(text)
            data = tmp_path / f"m{i}"
            done = _run("manager", "--server", server.url, "--token-file", str(token), "--data-dir", str(data),
                        "--port", "0")  # fmt: skip
            assert done.returncode == 2, (done.stdout, done.stderr)
            assert done.stderr == (
                f"tablao manager: cannot start: the Server at {server.url} refuses its token (not a Manager token "
                f"of this farm): --token-file {token} must hold the token the Server showed when this Manager was "
                "added (tablao managers add NAME, on its machine)\n"
            )
            assert not data.exists()
        token = tmp_path / "good"
        token.write_text(add_manager(server, "m1"))
        mgr = ManagerProcess(server.url, token.read_text(), tmp_path / "m1").start()
        try:  # a Manager's address given as the Server's
            done = _run("manager", "--server", mgr.url, "--token-file", str(token), "--data-dir", str(tmp_path / "m2"),
                        "--port", "0")  # fmt: skip
        finally:
            mgr.stop()
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stderr == (
            f"tablao manager: cannot start: {mgr.url} does not answer as a Tablao Server (HTTP 404 to the Manager "
            "link's /api/v1/manager/client-token): is --server the Server's address, not a Manager's or another "
            "program's?\n"
        )
    finally:
        server.stop()


def test_uvicorns_lines_are_in_the_services_own_format(tmp_path: Path) -> None:
    """The Manager's log mixed uvicorn's "INFO:     Started server process" with its own timestamped lines."""
    token = tmp_path / "token"
    token.write_text("tbl_unused\n")
    log = tmp_path / "manager.log"
    args = ["manager", "--server", "http://127.0.0.1:1", "--token-file", str(token), "--data-dir", str(tmp_path / "m"),
            "--port", "0", "--log-level", "info"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=child_env(), stderr=out)
    try:
        wait_for(lambda: "Application startup complete" in log.read_text(), timeout=60, what="the Manager's start")
    finally:
        proc.terminate()
        proc.wait(30)
    said = log.read_text()
    assert not re.search(r"^[A-Z]+: ", said, re.MULTILINE), said
    assert re.search(r"^\d{4}-\d\d-\d\d [\d:,]+ uvicorn.error INFO Application startup complete", said, re.M), said

"""Fixtures shared by every test: a real Server on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests start a few hundred Server, Manager and Worker processes. Where PYTHONDONTWRITEBYTECODE is set (as
# on this project's machines), each of them compiled its ~700 modules from source again: 2.5-4 s of CPU per
# start on a 2-core machine. The children keep their bytecode in a cache of the tests' own instead (outside the
# work tree, as the setting asks), so only the first start compiles.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) and "PYTHONPYCACHEPREFIX" not in os.environ:
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / f"tablao-tests-pycache-{os.getuid()}")

from tests.support.databases import database_url
from tests.support.services import QUICK_LEASE, ServerProcess


@pytest.fixture(scope="session", autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user state folder (XDG_STATE_HOME: where `tablao` commands remember which of several Servers answered)
    is the tests' own, for this process and the commands it starts, not the user's."""
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def db_url(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database_url(db_kind, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real Server subprocess on an ephemeral port, shared by a module's tests; on SQLite and on PostgreSQL."""
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=db_url).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Server of the test's own, on SQLite, for tests that need an empty farm or stop the Server."""
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    yield srv
    srv.stop()


@pytest.fixture
def quick_lease_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Like `fresh_server`, with a 10 s lease (QUICK_LEASE): its Managers report their workers every 2.5 s instead
    of every 10 s when nothing else is sent; for tests that stop no service for long."""
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None, extra_args=QUICK_LEASE).start()
    yield srv
    srv.stop()


@pytest.fixture
def session_umask() -> Iterator[None]:
    """A desktop session's usual umask (022) while the test runs: what a file's mode is made from."""
    old = os.umask(0o022)
    yield
    os.umask(old)

"""A remembered token the Server refuses is forgotten: at start-up the login is asked again (saying why) instead of
skipping it, and a token revoked while the window runs leaves the keyring. A token the Server accepts, or one it
could not judge (the Server down), is kept."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import desktop
from app.login import check_remembered, forget_when_refused
from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QDialog
from app.secrets import load_token, save_token
from app.settings import AppSettings
from app.ui.start_dialog import StartDialog
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.manager import API
from tests.support.ports import free_port
from tests.support.services import ServerProcess


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Server of the test's own, given time to start on a busy machine."""
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start(timeout=120)
    yield srv
    srv.stop()


pytestmark = pytest.mark.timeout(300)


def _token(server: ServerProcess, name: str) -> tuple[int, str]:
    h = server.headers()
    assert httpx.post(f"{server.url}{API}/users", json={"name": name, "role": "artist"}, headers=h).status_code == 201
    r = httpx.post(f"{server.url}{API}/tokens", json={"user": name}, headers=h).json()
    return int(r["id"]), str(r["token"])


def _revoke(server: ServerProcess, token_id: int) -> None:
    assert httpx.delete(f"{server.url}{API}/tokens/{token_id}", headers=server.headers()).status_code == 204


def test_check_forgets_only_a_refused_token(qloop, fresh_server: ServerProcess) -> None:
    url = fresh_server.url
    _, good = _token(fresh_server, "ana")
    bad_id, bad = _token(fresh_server, "bo")
    _revoke(fresh_server, bad_id)

    async def scenario() -> None:
        assert save_token(url, good)
        assert await check_remembered(url, good) is True
        assert load_token(url) == good
        down = f"http://127.0.0.1:{free_port()}"
        assert save_token(down, good)
        assert await check_remembered(down, good) is None, "a Server that does not answer refuses nothing"
        assert load_token(down) == good
        assert save_token(url, bad)
        assert await check_remembered(url, bad) is False
        assert load_token(url) is None

    qloop.run_until_complete(scenario())


def test_start_up_asks_again_when_the_remembered_token_is_refused(
    qloop, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_id, token = _token(fresh_server, "cy")
    _revoke(fresh_server, token_id)
    settings = AppSettings.load()
    settings.mode, settings.server_url = "connect", fresh_server.url
    settings.save()
    assert save_token(fresh_server.url, token)
    shown: list[dict[str, Any]] = []

    def exec_(dialog: Any) -> int:  # the start dialog, answered "Cancel" after noting what it showed
        connect = dialog.connect_.isChecked()
        shown.append({"error": dialog.error.text(), "connect": connect, "url": dialog.server_url.text()})
        return int(QDialog.DialogCode.Rejected.value)

    monkeypatch.setattr(StartDialog, "exec", exec_)
    args = argparse.Namespace(
        embedded=False, data_dir=None, port=None, workers=None, server=None, manager_url=None, demo=False, open_job=None
    )
    assert qloop.run_until_complete(desktop.run(args)) == 0
    assert len(shown) == 1, "the refused token did not skip the login"
    assert "refused the token" in shown[0]["error"] and shown[0]["connect"] and shown[0]["url"] == fresh_server.url
    assert load_token(fresh_server.url) is None


def test_a_token_revoked_while_the_window_runs_is_forgotten(qloop, fresh_server: ServerProcess) -> None:
    token_id, token = _token(fresh_server, "di")
    assert save_token(fresh_server.url, token)
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token))
    errors: list[str] = []
    sync.error.connect(errors.append)
    forget_when_refused(sync, fresh_server.url, token)

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        assert load_token(fresh_server.url) == token
        _revoke(fresh_server, token_id)
        await sync.stop()  # the stream reconnects with the revoked token, as after a network drop
        sync._main = None
        sync.start()
        await until(lambda: sync.state == ConnectionState.UNAUTHORIZED, within=20, what="refused")
        await until(lambda: load_token(fresh_server.url) is None, what="forgotten")
        assert any("forgotten" in e for e in errors)
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())

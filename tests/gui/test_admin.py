"""The Administration menu and dialog against a real Server: an artist gets no menu (and the Server refuses an
artist's admin call anyway); an admin adds and changes users, creates a token shown once and revokes it, adds a
Manager whose token works and removes it, and sets up a webhook whose test call reaches a real receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models.store import ClientStore
from app.models.sync import FarmSync
from app.ui.admin import AdminDialog
from app.ui.main_window import MainWindow
from services.protocol.admin import WebhookEvent
from services.protocol.admin_client import AdminClient
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.states import Role
from tests.gui.conftest import until
from tests.support.manager import API
from tests.support.services import ServerProcess
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Server of the test's own, given time to start on a busy machine."""
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start(timeout=120)
    yield srv
    srv.stop()


pytestmark = pytest.mark.timeout(300)


def _user_token(server: ServerProcess, name: str, role: str) -> str:
    h = server.headers()
    r = httpx.post(f"{server.url}{API}/users", json={"name": name, "role": role}, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return str(httpx.post(f"{server.url}{API}/tokens", json={"user": name}, headers=h, timeout=30).json()["token"])


def _window(qtbot: Any, server: ServerProcess, token: str) -> MainWindow:
    window = MainWindow(FarmSync(ClientStore(), ServerClient(server.url, token)), token, confirm=lambda _t, _x: True)
    qtbot.addWidget(window)
    return window


def _menus(window: MainWindow) -> list[str]:
    return [a.text() for a in window.menuBar().actions()]


def test_an_artist_sees_no_admin_menu_and_the_server_refuses_its_admin_calls(
    qloop, qtbot, fresh_server: ServerProcess
) -> None:
    artist = _user_token(fresh_server, "ana", "artist")
    window = _window(qtbot, fresh_server, artist)
    admin_window = _window(qtbot, fresh_server, fresh_server.admin_token)

    async def scenario() -> None:
        assert await window.admin.check() == Role.ARTIST
        assert window.admin.menu is None and "&Administration" not in _menus(window)
        # the menu is only clarity: the Server refuses the artist's admin calls whatever the app shows
        admin = AdminClient(window.sync.client)
        for call in (admin.users(), admin.tokens(), admin.webhooks(), admin.create_manager("sneaky")):
            with pytest.raises(ApiError) as refused:
                await call
            assert refused.value.status_code == 403
        # an artist's dialog, were it opened anyway, shows the refusals and lists nothing
        dialog = AdminDialog(window.sync.client, window.admin.spawn, lambda _t, _x: True, window)
        qtbot.addWidget(dialog)
        await dialog.refresh_all()
        assert dialog.users.table.rowCount() == 0 and "Refused (403)" in dialog.users.message.text()

        assert await admin_window.admin.check() == Role.ADMIN
        assert "&Administration" in _menus(admin_window)
        await window.sync.client.aclose()
        await admin_window.sync.client.aclose()

    qloop.run_until_complete(scenario())


def test_users_tokens_managers_and_webhooks_from_the_dialog(qloop, qtbot, fresh_server: ServerProcess) -> None:
    window = _window(qtbot, fresh_server, fresh_server.admin_token)
    receiver = WebhookReceiver().start()
    base = fresh_server.url + API

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await steps(http)

    async def steps(http: httpx.AsyncClient) -> None:
        await window.admin.check()
        assert window.admin.action is not None
        window.admin.action.trigger()
        dialog = window.admin.dialog
        assert dialog is not None and dialog.isVisible()
        await until(lambda: dialog.users.table.rowCount() == 1, what="the admin listed")

        # users: add, refuse a duplicate with the Server's reason, change the role, disable
        users = dialog.users
        ana = await users.add("ana", Role.ARTIST, "ana-password")
        assert ana is not None and users.table.rowCount() == 2
        assert await users.add("ana", Role.ARTIST) is None
        assert "Refused (409)" in users.message.text() and "exists already" in users.message.text()
        await users.change(ana.id, role=Role.WRANGLER)
        row = users.keys.index(ana.id)
        assert users.cell(row, 1) == "wrangler"

        # tokens: created and shown once, working, then revoked
        tokens = dialog.tokens
        created = await tokens.create_token("ana", "laptop")
        assert created is not None
        shown = tokens.shown[-1].secret.text()
        assert shown == created.token and shown.startswith("tbl_")
        assert (await http.get("/me", headers={"Authorization": f"Bearer {shown}"})).json()["role"] == "wrangler"
        await users.change(ana.id, disabled=True)
        assert users.cell(users.keys.index(ana.id), 2) == "disabled"
        assert (await http.get("/me", headers={"Authorization": f"Bearer {shown}"})).status_code == 401
        await users.change(ana.id, disabled=False)
        assert created.id in tokens.keys
        assert await tokens.revoke(created.id)
        assert created.id not in tokens.keys
        assert (await http.get("/me", headers={"Authorization": f"Bearer {shown}"})).status_code == 401

        # Managers: the token shown once lets a Manager in; removing it shuts it out
        managers = dialog.managers
        added = await managers.add("room-2")
        assert added is not None and added.id in managers.keys
        manager_token = managers.shown[-1].secret.text()
        claim = {"capacity": 0}
        auth = {"Authorization": f"Bearer {manager_token}"}
        assert (await http.post("/manager/claim", json=claim, headers=auth)).status_code == 200
        assert await managers.remove(added.id)
        assert added.id not in managers.keys
        assert (await http.post("/manager/claim", json=claim, headers=auth)).status_code == 401

        # webhooks: a bad URL is refused naming it; a good one gets the test call at the receiver
        hooks = dialog.webhooks
        assert await hooks.add("chat", "ftp://nope", [WebhookEvent.JOB_FAILED]) is None
        assert "url" in hooks.message.text()
        hook = await hooks.add("chat", receiver.url, [WebhookEvent.JOB_COMPLETED, WebhookEvent.JOB_FAILED])
        assert hook is not None and hooks.shown[-1].secret.text() == hook.secret
        row = hooks.keys.index(hook.id)
        assert hooks.cell(row, 2) == "job-completed, job-failed" and hooks.cell(row, 3) == "enabled"
        key = await hooks.send_test(hook.id)
        await until(lambda: any(p["id"] == key for p in receiver.payloads()), within=20, what="the test call")
        for _ in range(100):  # the Server records the delivery just after the receiver answered
            await hooks.refresh()
            if hooks.cell(hooks.keys.index(hook.id), 5):
                break
            await asyncio.sleep(0.1)
        assert hooks.cell(hooks.keys.index(hook.id), 5) != "", "last delivered shown"
        await hooks.set_enabled(hook.id, False)
        assert hooks.cell(hooks.keys.index(hook.id), 3) == "disabled"
        assert await hooks.remove(hook.id)
        assert hooks.table.rowCount() == 0
        await window.sync.client.aclose()

    try:
        qloop.run_until_complete(scenario())
    finally:
        receiver.stop()

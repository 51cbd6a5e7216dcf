"""The submission dialog opened while the Server does not answer: it says so, and loads the job types by itself
once the Server answers again (asking again with back-off, or at once when the main window's link is back),
without being closed and opened again."""

from __future__ import annotations

import asyncio

import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QDialogButtonBox
from app.ui import submit_dialog
from app.ui.main_window import MainWindow
from app.ui.submit_dialog import SubmitDialog
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


def submit_enabled(dialog: SubmitDialog) -> bool:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def test_the_dialog_loads_the_job_types_once_the_server_answers(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit_dialog, "RETRY_MAX", 0.5)
    token = fresh_server.admin_token
    fresh_server.stop()
    client = ServerClient(fresh_server.url, token)

    async def scenario() -> None:
        dialog = SubmitDialog(client)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.load_in_background(preferred="exec")
        await until(lambda: "not answering" in dialog.message.text(), what="the farm is not answering")
        assert dialog.type_box.count() == 0 and not submit_enabled(dialog)
        await asyncio.to_thread(fresh_server.start)  # the same Server, on the same port
        await until(lambda: dialog.form_type == "exec", within=30, what="the job types, loaded by themselves")
        assert dialog.type_box.count() > 1 and submit_enabled(dialog)
        assert dialog.message.text() == ""
        dialog.reject()
        await client.aclose()

    qloop.run_until_complete(scenario())


def test_the_main_windows_link_coming_back_loads_an_open_dialog_at_once(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no retry of its own within the test: only the window's link can wake it
    monkeypatch.setattr(submit_dialog, "RETRY_FIRST", 600.0)
    token = fresh_server.admin_token
    fresh_server.stop()
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token))
    window = MainWindow(sync, token, confirm=lambda title, text: True)
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        sync.start()
        dialog = window.open_submit_dialog()
        await until(lambda: "not answering" in dialog.message.text(), what="the farm is not answering")
        await asyncio.to_thread(fresh_server.start)
        await until(lambda: sync.state == ConnectionState.CONNECTED, within=30, what="the link back")
        await until(lambda: dialog.form is not None, within=10, what="the job types after the link came back")
        assert dialog.type_box.count() > 1 and dialog.message.text() == ""
        dialog.reject()
        await window.shutdown()

    qloop.run_until_complete(scenario())

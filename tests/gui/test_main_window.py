"""The main window against a real Server: submit through the dialog, field errors, pause and resume from
the context menu, status changes in the table, Server errors shown in the window."""

from __future__ import annotations

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QLabel
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.services import ServerProcess


def status_in_table(window: MainWindow, job_id: int) -> str | None:
    model = window.jobs.jobs_model
    model.flush()
    row = model.row_of(job_id)
    return None if row is None else str(model.data(model.index(row, 1)))


def trigger(menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text() == text)
    assert action.isEnabled(), f"{text} is disabled"
    action.trigger()


def test_submit_pause_resume_and_field_errors(qloop, qtbot, fresh_server: ServerProcess) -> None:
    token = fresh_server.admin_token
    store = ClientStore()
    sync = FarmSync(store, ServerClient(fresh_server.url, token))
    asked: list[str] = []

    def confirm(title: str, text: str) -> bool:
        asked.append(title)
        return True

    window = MainWindow(sync, token, confirm=confirm)
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        assert "connected" in window.connection.text()

        dialog = window.open_submit_dialog()
        await until(lambda: dialog.form is not None, what="the form")
        dialog.type_box.setCurrentIndex(dialog.type_box.findData("exec"))
        await until(lambda: dialog.form is not None and "command" in dialog.form.editors, what="exec form")
        form = dialog.form
        assert form is not None

        # checked before sending: a required list left empty and no name
        form.set_value("command", "")
        assert await dialog.send() is None
        assert not form.errors["command"].isHidden()
        assert form.errors["command"].text() == "is required"
        assert dialog.common_errors["name"].text() == "is required"

        # the Server's verdict on a bad setting shows next to that setting
        dialog.name.setText("gui job")
        form.set_value("command", "sleep 1")
        form.set_value("frames", "ten to twenty")
        assert await dialog.send() is None
        frames_error = form.errors["frames"]
        assert isinstance(frames_error, QLabel) and not frames_error.isHidden()
        assert frames_error.text(), "the Server's message for settings.frames"
        assert form.errors["command"].isHidden()
        assert "refused" in dialog.message.text()

        form.set_value("frames", "1-4")
        job = await dialog.send()
        assert job is not None and job.name == "gui job"
        assert form.errors["frames"].isHidden()
        await until(lambda: status_in_table(window, job.id) == "queued", what="the new row")

        window.jobs.select_job(job.id)
        await until(lambda: window.jobs.tasks_model.rowCount() == 4, what="its tasks")
        trigger(window.jobs.jobs_menu(), "Pause")
        await until(lambda: status_in_table(window, job.id) == "paused", what="paused in the table")
        trigger(window.jobs.jobs_menu(), "Resume")
        await until(lambda: status_in_table(window, job.id) == "queued", what="queued again")
        await until(lambda: "paused" in window.jobs.job_log.toPlainText(), what="the job log")

        # a refused action is shown in the window, not swallowed: deleting an unfinished job is a 409
        trigger(window.jobs.jobs_menu(), "Delete…")
        assert asked == ["Delete jobs"], "a destructive action asks first"
        await until(lambda: bool(window.message_bar.messages), what="the Server's refusal in the window")
        assert not window.message_bar.isHidden()
        assert status_in_table(window, job.id) == "queued"

        await window.shutdown()

    qloop.run_until_complete(scenario())

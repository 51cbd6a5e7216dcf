"""The submission dialog when the Server's answer is lost (a real Server behind a proxy that drops it): the
dialog says to submit again, and a second press of Submit gets the job the first one made, not a second job;
a changed form is a new job."""

from __future__ import annotations

import pytest

from app.ui.submit_dialog import SubmitDialog
from services.protocol import resubmit
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.lossy_proxy import LossyProxy
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


def test_a_second_press_after_a_lost_answer_makes_no_second_job(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.05,) * 4)
    proxy = LossyProxy(fresh_server.port, lose=1 + len(resubmit.LOST_ANSWER_WAITS))  # every try of the first press
    client = ServerClient(proxy.url, fresh_server.admin_token)

    async def scenario() -> None:
        dialog = SubmitDialog(client)
        qtbot.addWidget(dialog)
        await dialog.load(preferred="exec")
        await until(lambda: dialog.form_type == "exec" and (dialog._pending is None or dialog._pending.done()))
        assert dialog.form is not None
        dialog.name.setText("lost answer")
        dialog.form.set_value("command", "true")
        assert await dialog.send() is None
        assert "Submit again to retry: the job will not be made twice" in dialog.message.text()
        assert proxy.lost == 5
        made = fresh_server.jobs_named("lost answer")
        assert len(made) == 1  # the first try made it, the repeats did not

        job = await dialog.send()  # the second press: answered this time
        assert job is not None and [job.id] == made
        assert fresh_server.jobs_named("lost answer") == made

        dialog.name.setText("lost answer, renamed")  # another form: another job, another key
        renamed = await dialog.send()
        assert renamed is not None and renamed.id != job.id
        await client.aclose()

    try:
        qloop.run_until_complete(scenario())
    finally:
        proxy.close()

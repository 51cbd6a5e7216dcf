"""The window's desktop notification shows a job's name and activity line as written: escaped where the
notification server reads markup (a freedesktop server), as they are where the body is plain text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.qt import QIcon
from app.ui.notifications import Notifier
from services.protocol.jobs import Job, OnTaskFailure
from services.protocol.states import JobStatus


class FakeTray:
    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    def showMessage(self, title: str, body: str, icon: Any, msecs: int) -> None:
        self.shown.append((title, body))


def failed_job() -> Job:
    now = datetime.now(UTC)
    return Job(id=7, name='<a href="https://x.example">shot</a>', type="exec", settings={}, priority=50,
               submitter="ana", tags=[], manager_id=None, depends_on=[], max_task_failures=3,
               on_task_failure=OnTaskFailure.FAIL_JOB, status=JobStatus.FAILED, activity="<b>exit 1</b>",
               created=now, updated=now, tasks_total=1, tasks_completed=0, tasks_failed=1, tasks_active=0)  # fmt: skip


@pytest.mark.parametrize("markup", [True, False])
def test_the_desktop_notification_escapes_only_for_markup(qapp, monkeypatch: pytest.MonkeyPatch, markup: bool) -> None:
    told: list[tuple[str, str]] = []
    notifier = Notifier(QIcon(), lambda title, body: told.append((title, body)))
    monkeypatch.setattr(Notifier, "desktop", property(lambda self: True))  # offscreen has no tray: a stand-in
    notifier.tray = tray = FakeTray()  # type: ignore[assignment]
    notifier.markup = markup
    notifier.job_finished(failed_job())
    ((title, body),) = tray.shown
    assert title == "Job failed" and told == []
    if markup:
        assert (
            body
            == '&lt;a href="https://x.example"&gt;shot&lt;/a&gt; (#7): 1 of 1 task failed. &lt;b&gt;exit 1&lt;/b&gt;'
        )
    else:
        assert body == '<a href="https://x.example">shot</a> (#7): 1 of 1 task failed. <b>exit 1</b>'
    # the window's own record keeps the text as written (its message bar shows plain text)
    assert notifier.history == [
        ("Job failed", '<a href="https://x.example">shot</a> (#7): 1 of 1 task failed. <b>exit 1</b>')
    ]

"""Tells the wrangler when a job completes or fails: a desktop notification where a tray exists, else in-window."""

from __future__ import annotations

from collections.abc import Callable

from app.notification_text import body_takes_markup, notification_body
from app.qt import QIcon, QObject, QSystemTrayIcon, QWidget
from services.protocol.common import plural
from services.protocol.jobs import Job
from services.protocol.states import JobStatus


class Notifier(QObject):
    def __init__(self, icon: QIcon, in_window: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.in_window = in_window
        self.history: list[tuple[str, str]] = []  # (title, body as written), newest last
        self.tray: QSystemTrayIcon | None = None
        self.markup = False  # whether the notification server reads the body as markup
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("Tablao")
            self.tray.show()
            self.markup = body_takes_markup()

    @property
    def desktop(self) -> bool:
        return self.tray is not None and QSystemTrayIcon.supportsMessages()

    def job_finished(self, job: Job) -> None:
        if job.status is JobStatus.COMPLETED:
            title, body = "Job completed", f"{job.name} (#{job.id}): {plural(job.tasks_total, 'task')} done"
            icon = QSystemTrayIcon.MessageIcon.Information
        else:
            failed = f"{job.tasks_failed} of {plural(job.tasks_total, 'task')} failed"
            title, body = "Job failed", f"{job.name} (#{job.id}): {failed}. {job.activity}"
            icon = QSystemTrayIcon.MessageIcon.Critical
        self.history.append((title, body))
        if self.desktop and self.tray is not None:
            # the job's name and activity line come from the farm: escaped where the server reads markup
            self.tray.showMessage(title, notification_body(body, markup=self.markup), icon, 10_000)
        else:
            self.in_window(title, body)

"""`tablao://job/ID` links that macOS hands to the running app as an open-URL event (not on the command line).

Linux and Windows start `tablao-desktop tablao://job/ID` (see app/launcher.py and app/cli.py); macOS starts the
app bundle, or finds it running, and delivers the link as a QFileOpenEvent. This filter turns such an event into
the same "reveal the job" the command line's `--open-job` asks for, keeping links that arrive before the main
window exists until it does.
"""

from __future__ import annotations

from collections.abc import Callable

from app.job_links import job_of
from app.qt import QEvent, QFileOpenEvent, QObject


class LinkOpener(QObject):
    """Install on the QApplication; `reveal` is set once there is a window to show jobs in."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[int] = []
        self._reveal: Callable[[int], None] | None = None

    def set_reveal(self, reveal: Callable[[int], None]) -> None:
        self._reveal = reveal
        waiting, self.pending = self.pending, []
        for job_id in waiting:
            reveal(job_id)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.FileOpen or not isinstance(event, QFileOpenEvent):
            return False
        job_id = job_of(event.url().toString())
        if job_id is None:
            return False  # a file or another scheme: not ours to handle
        if self._reveal is None:
            self.pending.append(job_id)
        else:
            self._reveal(job_id)
        return True

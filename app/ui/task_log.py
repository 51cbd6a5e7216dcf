"""The task log viewer: the full log from the Manager that ran the task (found through the Server), with a
live tail, search and earlier parts on demand; else the Server's copy, else its last lines
(services/protocol/task_log_source.py)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from app.qt import QDialog, QVBoxLayout, QWidget
from app.ui.log_view import LogView
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.task_log_source import PAGE_CHARS, Place, TaskLogReader


class TaskLogDialog(QDialog):
    def __init__(self, client: ServerClient, token: str, task_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Task {task_id}: log")
        self.resize(900, 600)
        self.reader = TaskLogReader(client, token, task_id)
        self.view = LogView(self)
        self.view.earlier_requested.connect(self._load_earlier)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        self.first = 0  # the reader's cursor of the earliest text shown
        self.finished_reading = False
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._spawn(self.run())

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def done(self, result: int) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._spawn(self.reader.aclose())
        super().done(result)

    async def run(self) -> None:
        self.view.source.setText("Looking for the log…")
        try:
            part = await self.reader.open(PAGE_CHARS)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            self.view.source.setText(f"Could not find the log: {getattr(exc, 'detail', exc)}")
            return
        self.first = part.first
        live = ", live" if self.reader.place == Place.MANAGER else ""
        self.view.source.setText(f"{self.reader.note}{live}{'' if part.text else ' (no lines yet)'}:")
        self.view.prepend(part.text, part.earlier)
        if self.reader.place != Place.MANAGER:
            self.finished_reading = True
            return
        try:
            async for chunk in self.reader.follow(part.last):
                self.view.append(chunk)
        except (httpx.HTTPError, OSError) as exc:
            self.view.source.setText(f"{self.reader.note}: the live tail stopped ({exc})")
            return
        finally:
            self.finished_reading = True
        with contextlib.suppress(RuntimeError):  # the dialog may be gone by now
            self.view.source.setText(f"{self.reader.note} (the task is no longer running there)")

    def _load_earlier(self) -> None:
        self._spawn(self._earlier())

    async def _earlier(self) -> None:
        try:
            part = await self.reader.earlier(self.first, PAGE_CHARS)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            self.view.loading = False
            self.view.earlier.setEnabled(True)
            self.view.source.setText(f"Could not read earlier lines: {getattr(exc, 'detail', exc)}")
            return
        self.first = part.first
        self.view.prepend(part.text, part.earlier)

"""The task log viewer: the full log from the task's Manager with a live tail, or the Server's tail."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from app.qt import (
    QCheckBox,
    QDialog,
    QFontDatabase,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QTextCursor,
    QVBoxLayout,
    QWidget,
)
from services.protocol import API_PREFIX
from services.protocol.server_client import ApiError, ServerClient

MAX_LINES = 20_000  # older lines scroll away so a chatty render cannot eat the app's memory


class TaskLogDialog(QDialog):
    def __init__(
        self,
        client: ServerClient,
        token: str,
        task_id: int,
        manager_url: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Task {task_id}: log")
        self.resize(820, 520)
        self.client = client
        self.token = token
        self.task_id = task_id
        self.manager_url = (manager_url or "").rstrip("/") or None
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.follow = QCheckBox("Follow new lines", self)
        self.follow.setChecked(True)
        self.source = QLabel(self)
        bar = QHBoxLayout()
        bar.addWidget(self.source, 1)
        bar.addWidget(self.follow)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.text)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    def done(self, result: int) -> None:
        if self._task is not None:
            self._task.cancel()
        super().done(result)

    def append(self, chunk: str) -> None:
        cursor = self.text.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(chunk)
        if self.follow.isChecked():
            self.text.moveCursor(QTextCursor.MoveOperation.End)

    async def run(self) -> None:
        if self.manager_url:
            try:
                await self._stream_from_manager()
                return
            except (httpx.HTTPError, OSError) as exc:
                self.source.setText(f"The Manager at {self.manager_url} did not answer ({exc}); the Server's tail:")
        else:
            self.source.setText("No Manager address set (Settings): showing the Server's last lines of the log.")
        await self._server_tail()

    async def _stream_from_manager(self) -> None:
        url = f"{self.manager_url}{API_PREFIX}/tasks/{self.task_id}/log"
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(10.0, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", url, params={"follow": 1}, headers=headers) as response,
        ):
            if response.status_code == 404:
                self.source.setText("This task's Manager has no log of it (not run there yet, or pruned).")
                await self._server_tail()
                return
            response.raise_for_status()
            self.source.setText(f"Full log from the Manager at {self.manager_url}, live:")
            async for chunk in response.aiter_text():
                self.append(chunk)
            self.source.setText(f"Full log from the Manager at {self.manager_url} (the task has finished).")

    async def _server_tail(self) -> None:
        try:
            task = await self.client.get_task(self.task_id)
        except ApiError as exc:
            self.append(f"Could not read the task: {exc.detail}\n")
            return
        with contextlib.suppress(RuntimeError):  # the dialog may be gone by now
            self.append("\n".join(task.log_tail) + ("\n" if task.log_tail else "(no lines yet)\n"))

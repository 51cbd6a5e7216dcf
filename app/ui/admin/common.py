"""Building blocks of the admin dialog's tabs: a table with buttons and a message line, a form, and the
dialog that shows a new secret (an API token, a Manager token, a webhook's signing secret) this once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import httpx

from app.qt import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGuiApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    plain_label,
)
from services.protocol.server_client import ApiError

T = TypeVar("T")
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[None]"]


def spawner(spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]) -> Spawn:
    """A `Spawn` over FarmSync.spawn (which reports failures in the window) for coroutines of any result."""

    def run(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[None]:
        async def drop_result() -> None:
            await coro

        return spawn(drop_result())

    return run


class AdminTab(QWidget):
    """A table of things, buttons acting on the selected one, and a line telling what happened or went wrong."""

    def __init__(self, columns: Sequence[str], spawn: Spawn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spawn = spawn
        self.table = QTableWidget(0, len(columns), self)
        self.table.setHorizontalHeaderLabels(list(columns))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.message = plain_label(QLabel(self))
        self.message.setWordWrap(True)
        self.message.setObjectName("admin-message")
        self.buttons = QHBoxLayout()
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(self.buttons)
        layout.addWidget(self.message)
        self.keys: list[Any] = []
        self.shown: list[ShowOnceDialog] = []  # secrets shown, newest last (tests read them)

    def add_button(self, text: str, handler: Callable[[], None], name: str = "") -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name or text)
        button.clicked.connect(lambda _checked=False: handler())
        self.buttons.addWidget(button)
        return button

    def set_rows(self, rows: Sequence[tuple[Any, Sequence[str]]]) -> None:
        """(key, cells) per row; the selection follows its key across a reload."""
        selected = self.selected()
        self.table.setRowCount(len(rows))
        self.keys = [key for key, _ in rows]
        for r, (_, cells) in enumerate(rows):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if selected is not None and selected in self.keys:
            self.table.selectRow(self.keys.index(selected))

    def cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    def selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.keys[rows[0].row()] if rows and rows[0].row() < len(self.keys) else None

    def select(self, key: Any) -> None:
        if key in self.keys:
            self.table.selectRow(self.keys.index(key))

    def say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #d63a3a;" if error else "color: #2f6f3e;")
        self.message.setText(text)

    async def succeeds(self, call: Awaitable[object]) -> bool:
        """True when the call went through; else the refusal is told in the tab."""

        async def done() -> bool:
            await call
            return True

        return bool(await self.attempt(done()))

    async def attempt(self, call: Awaitable[T]) -> T | None:
        """The call's result, or None after telling the Server's refusal (or the network's failure) in the tab."""
        try:
            return await call
        except ApiError as exc:
            self.say(f"Refused ({exc.status_code}): {exc.detail}", error=True)
        except (httpx.HTTPError, OSError) as exc:
            self.say(f"The Server did not answer: {exc}", error=True)
        return None

    def show_secret(self, title: str, text: str, secret: str) -> ShowOnceDialog:
        dialog = ShowOnceDialog(title, text, secret, self)
        self.shown.append(dialog)
        dialog.open()
        return dialog


class ShowOnceDialog(QDialog):
    """A new secret, shown this once: the Server keeps only its hash (or, for webhooks, never shows it again)."""

    def __init__(self, title: str, text: str, secret: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.secret = QLineEdit(secret, self)
        self.secret.setReadOnly(True)
        self.secret.setObjectName("secret")
        self.secret.selectAll()
        copy = QPushButton("Copy", self)
        copy.clicked.connect(lambda _c=False: QGuiApplication.clipboard().setText(self.secret.text()))
        row = QHBoxLayout()
        row.addWidget(self.secret, 1)
        row.addWidget(copy)
        label = plain_label(QLabel(text + "\n\nIt is shown this once: copy it now.", self))
        label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)


class FormDialog(QDialog):
    """A small form: rows of (label, widget), OK and Cancel."""

    def __init__(self, title: str, rows: Sequence[tuple[str, QWidget]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QFormLayout(self)
        for label, widget in rows:
            widget.setParent(self)
            form.addRow(label, widget)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


def when(moment: object) -> str:
    """A time for a table cell: local, to the minute; '' for none."""
    from datetime import datetime

    if not isinstance(moment, datetime):
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")

"""The message bar at the top of the main window, and the history of its messages.

The bar shows the latest message only; an error replaced a second later by an unrelated line was lost, so the
last HISTORY_MAX messages are kept with their local time and listed, newest first, in a window the bar's
"Earlier messages" button opens. Farm text (a job's name may be `<img src=...>`) is shown as plain text there too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from app.qt import (
    QDialog,
    QFontDatabase,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
    plain_label,
)

HISTORY_MAX = 50  # messages kept
TEXT_MAX = 4000  # characters kept of one message: the history's memory stays bounded


@dataclass(frozen=True)
class Message:
    text: str
    error: bool
    at: datetime = field(default_factory=lambda: datetime.now().astimezone())  # the user's local time

    def line(self) -> str:
        mark = "error" if self.error else "info"
        # continuation lines indented under the text, so one message reads as one entry
        body = self.text.replace("\n", "\n" + " " * 17)
        return f"{self.at:%H:%M:%S}  {mark:<5}  {body}"


class MessageHistory(QDialog):
    """The bar's earlier messages, newest first, as plain text (selectable, to copy into a bug report)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Messages")
        self.resize(760, 360)
        self.text = QPlainTextEdit(self)  # plain text: nothing the farm sends is read as HTML
        self.text.setObjectName("message-history")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)

    def show_messages(self, messages: deque[Message]) -> None:
        self.text.setPlainText("\n".join(m.line() for m in reversed(messages)))


class MessageBar(QWidget):
    """A dismissable line at the top of the window: Server errors are shown here, never swallowed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = plain_label(QLabel(self))
        self.label.setWordWrap(True)
        self.label.setObjectName("message-bar")
        self.earlier = QToolButton(self)
        self.earlier.setObjectName("message-history-button")
        self.earlier.setToolTip("The last messages shown here, with their times")
        self.earlier.clicked.connect(self.show_history)
        close = QToolButton(self)
        close.setText("✕")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.earlier)
        row.addWidget(close)
        self.messages: deque[Message] = deque(maxlen=HISTORY_MAX)
        self.history: MessageHistory | None = None
        self._count_shown()
        self.hide()

    def show_message(self, text: str, error: bool = True) -> None:
        kept = text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + "…"
        self.messages.append(Message(kept, error))
        colour = "#fde2e2" if error else "#e2f0fd"
        self.setStyleSheet(f"background: {colour};")
        self.label.setText(text)
        self._count_shown()
        if self.history is not None and self.history.isVisible():
            self.history.show_messages(self.messages)
        self.show()

    def _count_shown(self) -> None:
        earlier = len(self.messages) - 1
        self.earlier.setText(f"Earlier messages ({earlier})" if earlier > 0 else "Messages")
        self.earlier.setEnabled(bool(self.messages))

    def show_history(self) -> MessageHistory:
        if self.history is None:
            self.history = MessageHistory(self.window())
        self.history.show_messages(self.messages)
        self.history.show()
        self.history.raise_()
        return self.history

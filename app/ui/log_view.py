"""A bounded log view with live tail and search: the text of a long log, a part at a time.

It holds at most MAX_LINES lines: new lines beyond that push the oldest out, and earlier parts are loaded on
demand (the owner reads them and calls `prepend`) until the bound is reached. Search finds the next or
previous match (wrapping), highlights the matches in view, and counts them up to COUNT_MAX.

Programs write for a terminal (Blender and ffmpeg colour their lines, rewrite a progress line with \r): the view
shows their text without the escape sequences and control characters (services/protocol/terminal_text.py), and
breaks a line longer than LINE_CHARS into parts, as one line of megabytes takes Qt seconds to lay out.
"""

from __future__ import annotations

import bisect
import itertools
import re

from app.qt import (
    QCheckBox,
    QColor,
    QFontDatabase,
    QHBoxLayout,
    QKeySequence,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextEdit,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
    plain_label,
)
from services.protocol.terminal_text import DisplayStream, for_display

MAX_LINES = 200_000  # lines held: a 100 MB log is read a part at a time, never whole
COUNT_MAX = 10_000  # matches counted; beyond that the count says "10000+"
SEARCH_DELAY_MS = 150
HIGHLIGHT_MAX = 500  # matches highlighted at once, around the current one
LINE_CHARS = 10_000  # a longer line is shown in parts of this length: Qt lays a 2 MB line out in about a second


def fold(text: str, column: int = 0, width: int = LINE_CHARS) -> str:
    """`text` with a line break after every `width` characters of a longer line; its first line continues one
    that has `column` characters already."""
    if column + len(text) <= width:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        used = column if i == 0 else 0
        if used + len(line) > width:
            first = max(width - used, 0)
            parts = [line[:first], *(line[j : j + width] for j in range(first, len(line), width))]
            lines[i] = "\n".join(parts)
    return "\n".join(lines)


class LogView(QWidget):
    earlier_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("log-text")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.source = plain_label(QLabel(self))
        self.source.setObjectName("log-source")
        self.source.setWordWrap(True)
        self.follow = QCheckBox("Follow new lines", self)
        self.follow.setChecked(True)
        self.follow.toggled.connect(self._follow_toggled)
        self.earlier = QPushButton("Load earlier lines", self)
        self.earlier.setEnabled(False)
        self.earlier.clicked.connect(self._ask_earlier)
        self.search = QLineEdit(self)
        self.search.setObjectName("log-search")
        self.search.setPlaceholderText("Find in the log (Enter: next, Shift+Enter: previous)")
        self.search.setClearButtonEnabled(True)
        # typing waits for a pause: each search of a full view reads all its text
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._query_changed)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self.find_next)
        self.previous_button = QPushButton("Previous", self)
        self.previous_button.clicked.connect(self.find_previous)
        self.next_button = QPushButton("Next", self)
        self.next_button.clicked.connect(self.find_next)
        self.matches = plain_label(QLabel(self))
        self.matches.setObjectName("log-matches")
        for keys, where, slot in (
            (QKeySequence(QKeySequence.StandardKey.Find), self, self.search.setFocus),
            (QKeySequence(QKeySequence.StandardKey.FindNext), self, self.find_next),
            (QKeySequence(QKeySequence.StandardKey.FindPrevious), self, self.find_previous),
            (QKeySequence("Shift+Return"), self.search, self.find_previous),
        ):
            QShortcut(keys, where).activated.connect(slot)

        top = QHBoxLayout()
        top.addWidget(self.source, 1)
        top.addWidget(self.earlier)
        top.addWidget(self.follow)
        find = QHBoxLayout()
        find.addWidget(self.search, 1)
        find.addWidget(self.previous_button)
        find.addWidget(self.next_button)
        find.addWidget(self.matches)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        layout.addLayout(find)
        self.dropped_top = False  # lines pushed out by new ones: the earlier parts can no longer join on
        self.loading = False
        self.match_count = 0
        self._found: list[int] = []
        self._found_key: tuple[str, int] = ("", -1)
        self._tail = DisplayStream()  # an escape sequence split between two pieces of the tail is held back

    # --- text -------------------------------------------------------------------------------------------------

    def lines(self) -> int:
        return self.text.document().blockCount()

    def append(self, chunk: str) -> None:
        """New text at the end (a live tail); the oldest lines go once the view holds MAX_LINES."""
        chunk = self._tail.feed(chunk)
        if not chunk:
            return
        column = self.text.document().lastBlock().length() - 1
        chunk = fold(chunk, column)
        bar = self.text.verticalScrollBar()
        keep = bar.value()
        doc = self.text.document()
        query = self.search.text()
        known = bool(query) and self._found_key == (query, doc.revision())
        cursor = QTextCursor(doc)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        base = cursor.position()
        cursor.insertText(chunk)
        excess = self.lines() - MAX_LINES
        removed = self._drop_top(excess) if excess > 0 else 0
        if self.follow.isChecked():
            self._scroll_to_end()
        else:
            bar.setValue(keep)
        if not query:
            return
        if known:  # the matches so far, moved by what was dropped, and those of the new text
            new = (base + m.start() for m in re.finditer(re.escape(query), chunk, re.IGNORECASE))
            moved = (p - removed for p in itertools.chain(self._found, new))
            self._found = list(itertools.islice((p for p in moved if p >= 0), COUNT_MAX))
            self._found_key = (query, doc.revision())
        if removed or query.casefold() in chunk.casefold():
            self._refresh_matches()  # a tail that brings no match leaves the count as it was

    def prepend(self, chunk: str, more_before: bool) -> None:
        """An earlier part (or the first one read) at the start; the view stays where the reader was."""
        self.loading = False
        room = MAX_LINES - self.lines()
        chunk = fold(for_display(chunk))
        if chunk and room > 0:
            lines = chunk.splitlines(keepends=True)
            if len(lines) > room:
                lines, more_before = lines[-room:], True
            bar = self.text.verticalScrollBar()
            from_bottom = bar.maximum() - bar.value()
            cursor = QTextCursor(self.text.document())
            cursor.movePosition(QTextCursor.MoveOperation.Start)
            text = "".join(lines)
            empty = self.text.document().isEmpty()
            cursor.insertText(text if empty or text.endswith("\n") else text + "\n")
            if self.follow.isChecked():
                self._scroll_to_end()
            else:
                bar.setValue(bar.maximum() - from_bottom)
        full = self.lines() >= MAX_LINES
        self.earlier.setEnabled(more_before and not full and not self.dropped_top)
        if more_before and full:
            self.earlier.setText(f"Earlier lines not shown (the view holds {MAX_LINES:,})")
        elif not more_before:
            self.earlier.setText("From the first line")
        self._refresh_matches()

    def _drop_top(self, blocks: int) -> int:
        """Remove the first lines; returns how many characters went."""
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.Start)
        cursor.movePosition(QTextCursor.MoveOperation.NextBlock, QTextCursor.MoveMode.KeepAnchor, blocks)
        removed = cursor.selectionEnd() - cursor.selectionStart()
        cursor.removeSelectedText()
        self.dropped_top = True
        self.earlier.setEnabled(False)
        self.earlier.setText("Older lines dropped from view")
        return removed

    def _follow_toggled(self, on: bool) -> None:
        if on:
            self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _ask_earlier(self) -> None:
        if not self.loading:
            self.loading = True
            self.earlier.setEnabled(False)
            self.earlier_requested.emit()

    # --- search -----------------------------------------------------------------------------------------------

    def find_next(self) -> bool:
        return self._find(backward=False)

    def find_previous(self) -> bool:
        return self._find(backward=True)

    def _find(self, backward: bool) -> bool:
        if self._search_timer.isActive():  # Enter before the pause: the query first
            self._search_timer.stop()
            self._query_changed()
            return bool(self.match_count)
        query = self.search.text()
        if not query:
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        doc = self.text.document()
        found = doc.find(query, self.text.textCursor(), flags)
        if found.isNull():  # wrap around
            start = QTextCursor(doc)
            start.movePosition(QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start)
            found = doc.find(query, start, flags)
        if found.isNull():
            self.matches.setText("not found")
            return False
        self.follow.setChecked(False)  # new lines must not pull the view away from what was found
        self.text.setTextCursor(found)
        self.text.centerCursor()
        self._refresh_matches()  # the highlights move with it (the matches are known already)
        return True

    def _query_changed(self) -> None:
        self._refresh_matches()
        if self.search.text():
            cursor = self.text.textCursor()
            cursor.setPosition(cursor.selectionStart())  # find from where the last match began: typing refines
            self.text.setTextCursor(cursor)
            self.find_next()

    def _positions(self) -> list[int]:
        """Where the query matches (case-insensitive), up to COUNT_MAX: one pass over the plain text, kept until
        the text or the query changes (QTextDocument.find per match would take seconds for thousands)."""
        query = self.search.text()
        key = (query, self.text.document().revision())
        if key != self._found_key:
            found = re.finditer(re.escape(query), self.text.toPlainText(), re.IGNORECASE)
            self._found = [m.start() for m in itertools.islice(found, COUNT_MAX)]
            self._found_key = key
        return self._found

    def _refresh_matches(self) -> None:
        query = self.search.text()
        selections: list[QTextEdit.ExtraSelection] = []
        if not query:
            self.match_count = 0
            self.matches.setText("")
            self.text.setExtraSelections(selections)
            return
        positions = self._positions()
        self.match_count = len(positions)
        # the matches around the current one are highlighted: the ones a reader sees
        around = bisect.bisect_left(positions, self.text.textCursor().selectionStart())
        start = max(0, around - HIGHLIGHT_MAX // 2)
        doc = self.text.document()
        fmt = QTextCharFormat()
        fmt.setBackground(QColor("#ffe066"))
        for p in positions[start : start + HIGHLIGHT_MAX]:
            cursor = QTextCursor(doc)
            cursor.setPosition(p)
            cursor.setPosition(p + len(query), QTextCursor.MoveMode.KeepAnchor)
            sel = QTextEdit.ExtraSelection()
            sel.cursor = cursor
            sel.format = fmt
            selections.append(sel)
        self.text.setExtraSelections(selections)
        self._show_count(self.text.textCursor())

    def _show_count(self, at: QTextCursor) -> None:
        if not self.search.text():
            return
        total = f"{self.match_count}+" if self.match_count >= COUNT_MAX else str(self.match_count)
        if not at.hasSelection() or self.match_count == 0:
            self.matches.setText(f"{total} matches" if self.match_count else "not found")
            return
        index = bisect.bisect_left(self._positions(), at.selectionStart())
        self.matches.setText(f"{index + 1} of {total}" if index < COUNT_MAX else f"match past {COUNT_MAX}")

"""The main window's message bar keeps its earlier messages: an error replaced by an unrelated line a second
later can still be read, with its time, as plain text; the history is bounded."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.ui import message_bar
from app.ui.message_bar import MessageBar


# the offscreen platform cannot raise a window; a desktop's does (an open history comes to the front)
@pytest.mark.qt_log_ignore("does not support raise", "does not support propagateSizeHints")
def test_an_error_replaced_by_another_message_is_kept_with_its_time(qtbot) -> None:
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.show_message("The Server refused: job 7 is running")
    bar.show_message("Job completed: <img src=/dev/zero> (#8)", error=False)  # a job's name, farm text
    assert bar.label.text() == "Job completed: <img src=/dev/zero> (#8)"
    assert bar.earlier.isEnabled() and bar.earlier.text() == "Earlier messages (1)"
    history = bar.show_history()
    qtbot.addWidget(history)
    lines = history.text.toPlainText().splitlines()
    now = datetime.now().astimezone()
    assert lines[0].endswith("info   Job completed: <img src=/dev/zero> (#8)")  # newest first, as written
    assert lines[1].endswith("error  The Server refused: job 7 is running")
    stamp = datetime.strptime(lines[1][:8], "%H:%M:%S")
    assert (
        abs((now.hour * 3600 + now.minute * 60 + now.second) - (stamp.hour * 3600 + stamp.minute * 60 + stamp.second))
        <= 2
    )
    bar.show_message("later\nin two lines")  # an open history follows new messages
    assert history.text.toPlainText().splitlines()[0].endswith("error  later")


def test_the_history_is_bounded(qtbot) -> None:
    bar = MessageBar()
    qtbot.addWidget(bar)
    for i in range(message_bar.HISTORY_MAX * 20):
        bar.show_message(f"message {i} " + "x" * (message_bar.TEXT_MAX * 2))
    assert len(bar.messages) == message_bar.HISTORY_MAX
    assert bar.messages[0].text.startswith(f"message {message_bar.HISTORY_MAX * 19} ")
    assert all(len(m.text) <= message_bar.TEXT_MAX + 1 for m in bar.messages)

"""The task log view: a bounded live tail, earlier parts on demand, and search (find, highlight, next and
previous with wrap-around); and the task log dialog reading a real task's log from the Manager that ran it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.ui import log_view
from app.ui.log_view import LogView
from app.ui.task_log import TaskLogDialog
from services.protocol.server_client import ServerClient
from services.protocol.task_log_source import Place
from tests.gui.conftest import until
from tests.support.farm import local_farm


def selected(view: LogView) -> tuple[int, str]:
    """(line number, selected text) of the current match."""
    cursor = view.text.textCursor()
    return cursor.blockNumber(), cursor.selectedText()


def test_the_tail_follows_new_lines_unless_the_reader_looks_elsewhere(qtbot) -> None:
    view = LogView()
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    view.prepend("".join(f"line {i}\n" for i in range(500)), more_before=False)
    bar = view.text.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0  # the end shows first
    view.append("".join(f"new {i}\n" for i in range(100)))
    assert bar.value() == bar.maximum()
    assert "new 99" in view.text.toPlainText()
    view.follow.setChecked(False)
    bar.setValue(10)
    view.append("more\n")
    assert bar.value() == 10  # a reader scrolled up is not pulled away
    view.follow.setChecked(True)
    assert bar.value() == bar.maximum()
    assert not view.earlier.isEnabled() and view.earlier.text() == "From the first line"


def test_earlier_parts_are_prepended_on_demand_and_the_view_is_bounded(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(log_view, "MAX_LINES", 1000)
    view = LogView()
    qtbot.addWidget(view)
    asked: list[bool] = []
    view.earlier_requested.connect(lambda: asked.append(True))
    view.prepend("".join(f"part3 {i}\n" for i in range(400)), more_before=True)
    assert view.earlier.isEnabled()
    view.earlier.click()
    assert asked == [True] and not view.earlier.isEnabled()  # one request at a time
    view.earlier.click()
    assert asked == [True]
    view.prepend("".join(f"part2 {i}\n" for i in range(400)), more_before=True)
    text = view.text.toPlainText().splitlines()
    assert text[0] == "part2 0" and text[399] == "part2 399" and text[400] == "part3 0"
    view.earlier.click()
    view.prepend("".join(f"part1 {i}\n" for i in range(400)), more_before=True)
    assert view.lines() <= 1000  # only what fits; the rest is said not to be shown
    assert not view.earlier.isEnabled() and "not shown" in view.earlier.text()
    assert view.text.toPlainText().splitlines()[-1] == "part3 399"
    # a live tail past the bound pushes the oldest lines out, and earlier parts can no longer join on
    view.append("".join(f"tail {i}\n" for i in range(300)))
    assert view.lines() <= 1000 and view.dropped_top
    assert view.text.toPlainText().splitlines()[-1] == "tail 299"
    assert "dropped" in view.earlier.text()


def test_search_finds_highlights_counts_and_wraps(qtbot) -> None:
    view = LogView()
    qtbot.addWidget(view)
    view.show()
    lines = [f"Fra:{i} rendering" if i % 100 else f"Error: tile {i} failed" for i in range(1, 1001)]
    view.prepend("\n".join(lines) + "\n", more_before=False)
    qtbot.keyClicks(view.search, "error:")  # typing finds after a pause, case-insensitive
    qtbot.waitUntil(lambda: view.match_count == 10)
    assert len(view.text.extraSelections()) == 10
    first = selected(view)
    assert first == (99, "Error:") and view.matches.text() == "1 of 10"
    assert not view.follow.isChecked()  # found lines stay in view while new ones arrive
    assert view.find_next() and selected(view)[0] == 199 and view.matches.text() == "2 of 10"
    assert view.find_previous() and selected(view)[0] == 99
    assert view.find_previous() and selected(view)[0] == 999  # wraps to the last
    assert view.matches.text() == "10 of 10"
    assert view.find_next() and selected(view)[0] == 99  # and back to the first
    # new lines with a match update the count; Enter is next
    view.append("Error: the last one\n")
    assert view.match_count == 11
    qtbot.keyClick(view.search, "\r")
    assert selected(view)[0] == 199
    view.search.setText("no such text")
    qtbot.waitUntil(lambda: view.matches.text() == "not found")
    assert not view.find_next()
    view.search.clear()
    qtbot.waitUntil(lambda: view.matches.text() == "")
    assert view.text.extraSelections() == []


def test_a_big_log_shows_its_end_quickly_and_search_stays_bounded(qtbot) -> None:
    view = LogView()
    qtbot.addWidget(view)
    view.show()
    part = "".join(f"{i:07d} some render output line with a few words in it\n" for i in range(4000))  # ~256 KB
    started = time.perf_counter()
    view.prepend(part, more_before=True)
    view.search.setText("render")
    qtbot.keyClick(view.search, "\r")  # Enter searches at once
    elapsed = time.perf_counter() - started
    # 4000 matches: counted, those around the current one highlighted
    assert view.match_count == 4000 and len(view.text.extraSelections()) == log_view.HIGHLIGHT_MAX
    assert elapsed < 5.0, f"{elapsed:.2f} s to show and search one part"


def test_terminal_escapes_are_not_shown_and_a_huge_line_does_not_stall_the_view(qtbot) -> None:
    view = LogView()
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    view.prepend("\x1b]0;Blender\x07\x1b[32mFra:1\x1b[0m Mem:1M\r\n", more_before=False)
    # a live tail in pieces that split an escape sequence, and a progress line rewritten with \r
    for piece in ("\x1b[1;3", "1mError\x1b[0", "m: bad\r", "\nframe=1\rframe=2\x1b[K\n"):
        view.append(piece)
    assert view.text.toPlainText() == "Fra:1 Mem:1M\nError: bad\nframe=1\nframe=2\n"
    started = time.perf_counter()
    view.append("x" * 2_000_000 + "\n")  # one line of 2 MB
    view.append("\x1b[31m\x1b[0m\x1b[2K" * 100_000)  # 1.3 MB of escapes only: nothing to show
    qtbot.wait(1)  # painted
    elapsed = time.perf_counter() - started
    doc = view.text.document()
    longest = max(doc.findBlockByNumber(n).length() - 1 for n in range(doc.blockCount()))
    assert longest == log_view.LINE_CHARS  # shown in parts
    assert view.text.toPlainText().count("x") == 2_000_000  # and nothing of it lost
    assert elapsed < 3.0, f"{elapsed:.2f} s for a 2 MB line and a run of escapes"


def test_matches_follow_a_tail_past_the_bound(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(log_view, "MAX_LINES", 300)
    view = LogView()
    qtbot.addWidget(view)
    view.prepend("".join(f"{'ERR' if i % 10 == 0 else 'ok'} {i}\n" for i in range(250)), more_before=False)
    view.search.setText("err")
    qtbot.keyClick(view.search, "\r")
    assert view.match_count == 25
    for start in range(250, 1000, 50):  # the oldest lines (and their matches) go as new ones come
        view.append("".join(f"{'ERR' if i % 10 == 0 else 'ok'} {i}\n" for i in range(start, start + 50)))
    text = view.text.toPlainText()
    assert view.match_count == text.count("ERR") == 29  # lines 701-999 held: 710, 720 … 990
    assert all(text[p : p + 3] == "ERR" for p in view._positions())  # positions still point at the matches
    view.search.setText("ERR ")  # a fresh search of the whole text agrees
    qtbot.waitUntil(lambda: view._found_key[0] == "ERR ")
    assert view.match_count == 29


@pytest.mark.timeout(240)
def test_the_dialog_reads_a_real_tasks_log_and_follows_it(qloop, qtbot, tmp_path: Path) -> None:
    with local_farm(tmp_path / "farm", workers=1) as farm:
        token = farm.farm.admin_token_file.read_text().strip()
        script = 'for i in $(seq 1 8); do echo "tick $i"; sleep 0.4; done'
        body = {"name": "ticks", "type": "exec", "settings": {"command": ["sh", "-c", script]}}
        job = farm.submit(body)
        task_id = farm.job(job["id"])["tasks"][0]["id"]
        farm.wait_for(lambda: farm.server.get(f"/tasks/{task_id}").json()["status"] == "active", 60)
        client = ServerClient(farm.farm.server_url, token)
        dialog = TaskLogDialog(client, token, task_id)
        qtbot.addWidget(dialog)
        dialog.show()

        async def scenario() -> None:
            dialog.start()
            await until(lambda: dialog.reader.place == Place.MANAGER and "live" in dialog.view.source.text(),
                        within=30, what="the log from the Manager")  # fmt: skip
            await until(lambda: "tick 8" in dialog.view.text.toPlainText(), within=60, what="the last tick, live")
            text = dialog.view.text.toPlainText()
            assert [f"tick {i}" in text for i in range(1, 9)] == [True] * 8
            assert "manager" in dialog.view.source.text()
            dialog.view.search.setText("tick 5")
            await until(lambda: dialog.view.matches.text() == "1 of 1", what="the match")
            assert dialog.view.matches.text() == "1 of 1" and dialog.view.text.textCursor().selectedText() == "tick 5"
            await until(lambda: dialog.finished_reading, within=30, what="the end of the live tail")
            dialog.close()
            await client.aclose()

        qloop.run_until_complete(scenario())

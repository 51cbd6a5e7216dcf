"""The Manager's full task logs read a part at a time: the end first, earlier parts by position, whole lines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.manager.store import logs
from services.manager.store.db import connect


def store(tmp_path: Path, chunks: list[list[str]]) -> sqlite3.Connection:
    conn = connect(tmp_path / "m" / "manager.sqlite")
    for lines in chunks:
        logs.append_log(conn, 7, 1, lines)
    logs.append_log(conn, 8, 1, ["another task"])
    return conn


def read_all_backwards(conn: sqlite3.Connection, page: int) -> tuple[list[str], int]:
    text, first, _end = logs.read_tail(conn, 7, page)
    parts, pages = [text], 1
    while logs.has_before(conn, 7, first):
        text, first, _ = logs.read_tail(conn, 7, page, before=first)
        assert text, "an earlier page that is empty would loop for ever"
        parts.insert(0, text)
        pages += 1
    return "".join(parts).splitlines(), pages


def test_pages_join_into_the_whole_log_in_order_and_start_at_lines(tmp_path: Path) -> None:
    # one big chunk (a worker's batch) and several small ones
    chunks = [[f"a{i:05d}" for i in range(5000)], *[[f"b{j}-{i}" for i in range(3)] for j in range(40)]]
    conn = store(tmp_path, chunks)
    expected = [line for chunk in chunks for line in chunk]
    for page in (50, 999, 10_000, 10**7):
        lines, pages = read_all_backwards(conn, page)
        assert lines == expected, page
        assert pages >= (sum(len(x) + 1 for x in expected) // page) if page < 10**7 else pages == 1
    text, first, _end = logs.read_tail(conn, 7, 100)
    assert len(text) <= 100 and text.startswith("b") and text.endswith("b39-2\n")
    assert first & logs.MASK == 0 or text.split("\n")[0] in expected  # it begins at a whole line


def test_the_end_position_is_where_a_follow_continues(tmp_path: Path) -> None:
    conn = store(tmp_path, [["one", "two"]])
    _text, _first, end = logs.read_tail(conn, 7, 1000)
    logs.append_log(conn, 7, 1, ["three"])
    after = logs.read_chunks(conn, 7, after_id=(end >> logs.SHIFT) - 1)
    assert "".join(c for _i, _h, c in after) == "three\n"
    assert logs.read_tail(conn, 99, 1000) == ("", 0, 0)  # no log: nothing, and nothing before
    assert not logs.has_before(conn, 99, 0)


def test_a_line_longer_than_a_page_still_shows_its_end(tmp_path: Path) -> None:
    conn = store(tmp_path, [["x" * 5000]])
    text, first, _ = logs.read_tail(conn, 7, 100)
    assert text == "x" * 99 + "\n" and first & logs.MASK == 4901
    rest, first2, _ = logs.read_tail(conn, 7, 10_000, before=first)
    assert rest == "x" * 4901 and not logs.has_before(conn, 7, first2)

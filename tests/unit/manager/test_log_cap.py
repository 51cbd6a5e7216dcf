"""One run of a task's log at the Manager is bounded: its start and its newest lines are kept, the middle left out
with one line saying how much (log_cap.py). A worker printing without end filled the Manager's disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.manager import log_cap
from services.manager.config import ManagerConfig
from services.manager.model import RunLog
from services.manager.store import logs
from services.manager.store.db import connect

LIMIT = 16_000  # characters; a mark every 1,000


def whole_log(conn: sqlite3.Connection, task_id: int) -> str:
    parts: list[str] = []
    after = 0
    while True:
        text, _first, after = logs.read_after(conn, task_id, after, 1_000_000)
        if not text:
            return "".join(parts)
        parts.append(text)


def write(conn: sqlite3.Connection, run: RunLog, batches: int, limit: int | None, task_id: int = 7) -> None:
    for n in range(batches):
        lines = [f"batch {n:05d} line {i:02d} " + "x" * 70 for i in range(3)]  # 3 lines of 92 characters
        log_cap.append(conn, task_id, 1, run, lines, limit)
        log_cap.append(conn, 8, 1, RunLog(), [f"another task's line {n}"], limit)  # ids shared with other tasks


def test_a_run_past_the_limit_keeps_its_start_and_its_end(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    run = RunLog()
    write(conn, run, 2000, LIMIT)  # 552,000 characters written
    text = whole_log(conn, 7)
    lines = text.splitlines()
    assert len(text) <= LIMIT + 300
    assert lines[0].startswith("batch 00000 line 00")  # the start: what was run
    assert lines[-1].startswith("batch 01999 line 02")  # the newest
    cut = [line for line in lines if line.startswith("[...")]
    assert len(cut) == 1 and "MB of this log left out here" in cut[0] and "TABLAO_MAX_TASK_LOG_MB" in cut[0]
    numbers = [int(line.split()[1]) for line in lines if line.startswith("batch")]
    assert numbers == sorted(numbers)  # in order, the middle left out in one piece
    head = lines.index(cut[0])
    assert numbers[head - 1] + 1 < numbers[head]
    assert log_cap.kept(run) <= LIMIT
    assert len(whole_log(conn, 8).splitlines()) == 2000  # the other task's log untouched


def test_the_line_says_how_much_was_left_out(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    run = RunLog()
    write(conn, run, 3000, 2 * 2**20 // 16 * 16)  # a 2 MB limit, 828,000 characters: nothing cut
    assert "[..." not in whole_log(conn, 7)
    write(conn, run, 9000, 2 * 2**20)  # 3.3 MB in all
    line = next(line for line in whole_log(conn, 7).splitlines() if line.startswith("[..."))
    left_out = float(line.split()[1])
    assert abs(left_out * 2**20 - (run.chars - log_cap.kept(run))) < 0.06 * 2**20


def test_huge_updates_keep_the_log_within_the_limit(tmp_path: Path) -> None:
    """An update may be 8 MB: kept whole as the run's head or its newest chunk, a 2 MB cap kept 12.6 MB."""
    conn = connect(tmp_path / "m.sqlite")
    run = RunLog()
    limit = 2 * 2**20
    for n in range(3):
        lines = [f"{n}-{i:05d} ".ljust(99, "x") for i in range(80_000)]  # 8 MB in one update
        log_cap.append(conn, 7, 1, run, lines, limit)
        text = whole_log(conn, 7)
        assert len(text) <= limit + limit // 16 + 300, n
    lines = text.splitlines()
    assert lines[0].startswith("0-00000") and lines[-1].startswith("2-79999")
    assert all(len(line) == 99 for line in lines if not line.startswith("[..."))  # whole lines only
    cut = [line for line in lines if line.startswith("[...")]
    assert len(cut) == 1
    left_out = float(cut[0].split()[1])
    assert abs(left_out * 2**20 - (run.chars - log_cap.kept(run))) < 0.06 * 2**20


def test_a_line_longer_than_a_part_is_kept_whole() -> None:
    assert list(log_cap.pieces("ab\ncdefgh\ni\n", 4)) == ["ab\n", "cdefgh\n", "i\n"]
    assert list(log_cap.pieces("abcdefgh\n", 4)) == ["abcdefgh\n"]
    assert list(log_cap.pieces("a\nb\n", 4)) == ["a\nb\n"]


def test_without_a_limit_everything_is_kept(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    write(conn, RunLog(), 500, None)
    assert len(whole_log(conn, 7).splitlines()) == 1500


@pytest.mark.parametrize(
    ("value", "chars"), [("256", 256 * 2**20), ("none", None), ("1", 2**20)]
)  # fmt: skip
def test_the_limit_is_set_in_megabytes(monkeypatch: pytest.MonkeyPatch, value: str, chars: int | None) -> None:
    monkeypatch.setenv("TABLAO_MAX_TASK_LOG_MB", value)
    config = ManagerConfig.from_env(server_url="http://s", token="t", data_dir=Path("/tmp/unused"))
    assert config.max_task_log_chars == chars


@pytest.mark.parametrize("value", ["0", "-5", "lots", "2000000"])
def test_a_bad_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TABLAO_MAX_TASK_LOG_MB", value)
    with pytest.raises(ValueError, match="TABLAO_MAX_TASK_LOG_MB: "):
        ManagerConfig.from_env(server_url="http://s", token="t", data_dir=Path("/tmp/unused"))

"""`tablao log --all` prints a log of any size from its start a part at a time, each part printed before the
next is read: it held the whole log in memory and stopped at 256 MiB (a 1.2 GB log: its last 256 MiB, 321 MB
of memory, 23 s before the first line). And `tablao task` shows a line break inside a log line escaped, and a long
line cut."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace
from typing import Any

import pytest

from services import client_cli
from services.protocol.failures import LogPart
from services.protocol.task_log_source import Place


class _FakeReader:
    """A Manager's log of five parts, cursors 1 to 5; records what was printed before each read."""

    PARTS = [f"part {n} line\n" * 3 for n in range(1, 6)]

    def __init__(self, out: io.StringIO) -> None:
        self.out = out
        self.place = Place.MANAGER
        self.note = "Full log from manager m1"
        self.printed_before_read: list[int] = []

    async def open(self) -> LogPart:
        return LogPart(text=self.PARTS[-1], first=4, last=5, earlier=True)

    async def later(self, after: int) -> LogPart:
        self.printed_before_read.append(self.out.getvalue().count("line"))
        if after >= len(self.PARTS):
            return LogPart(text="", first=after, last=after, earlier=True)
        return LogPart(text=self.PARTS[after], first=after, last=after + 1, earlier=after > 0)

    async def earlier(self, before: int) -> LogPart:
        raise AssertionError("--all reads forward, a part at a time")

    async def aclose(self) -> None:
        pass


def test_all_of_a_log_is_printed_in_order_a_part_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    made: list[_FakeReader] = []

    def reader(*_args: Any, **_kwargs: Any) -> _FakeReader:
        made.append(_FakeReader(out))
        return made[-1]

    monkeypatch.setattr(client_cli, "TaskLogReader", reader)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setenv("TABLAO_TOKEN", "t")
    assert client_cli.main("log", ["7", "--all", "--server", "http://127.0.0.1:9"]) == 0
    assert out.getvalue() == "".join(_FakeReader.PARTS)
    assert made[0].printed_before_read == [0, 3, 6, 9, 12, 15]  # each part out before the next is asked for


def _task_view(log_tail: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `tablao task 9` prints of an active task whose last lines are `log_tail`."""
    task = SimpleNamespace(
        id=9, name="frames 1-10", job_id=3, type="exec", worker_name="w1", status="active", attempt=1,
        failure_count=0, activity="", log_tail=log_tail,
    )  # fmt: skip

    class Client:
        async def get_task(self, _task_id: int) -> SimpleNamespace:
            return task

    args = SimpleNamespace(id=9, action=None, reason="")
    assert asyncio.run(client_cli._task(Client(), args)) == 0  # type: ignore[arg-type]
    return capsys.readouterr().out.splitlines()


def test_a_line_break_inside_a_log_line_is_escaped_in_a_tasks_view(capsys: pytest.CaptureFixture[str]) -> None:
    """A worker's line holding a line break printed its second half at column 0, as if the command's own."""
    lines = _task_view(["Fra:1 rendering\nTask 9: completed", "Fra:2\n"], capsys)
    assert "    Fra:1 rendering\\nTask 9: completed" in lines and "    Fra:2" in lines
    assert not [line for line in lines if line.startswith("Task 9: completed")]
    assert "  status active on w1, 0 failures" in lines  # no "attempt 1" beside "3 failures" (a contradiction)


def test_a_long_log_line_is_cut_in_a_tasks_view(capsys: pytest.CaptureFixture[str]) -> None:
    """A single 10 MB line (a progress bar's carriage returns) flooded the terminal: cut at 2,000 characters, whole
    ones, with how much was left off and where the line is whole. `tablao log` prints it whole."""
    long = "x" * 1_999 + "e\u0301" + "y" * 9_998_000  # the cut would part é's e from its accent
    lines = _task_view(["Fra:1", long, "z" * 2_000, "z" * 2_001], capsys)
    assert lines[-5:] == [
        "    Fra:1",
        "    " + "x" * 1_999 + "… 9,998,002 more characters",
        "    " + "z" * 2_000,  # at the width: whole, no marker
        "    " + "z" * 2_000 + "… 1 more character",
        "  its full log, lines whole: tablao log 9 (--all from its first line)",
    ]


def test_a_cut_keeps_characters_whole() -> None:
    from services.protocol.terminal_text import cut

    assert cut("abc", 3) == ("abc", 0)
    assert cut("abcd", 3) == ("abc", 1)
    assert cut("ab" + "e\u0301\u0302", 3) == ("ab", 3)  # e with two accents goes together
    assert cut("a👩\u200d💻b", 2) == ("a", 4)  # a ZWJ emoji sequence is one character to the eye
    assert cut("a👍\ufe0fb", 2) == ("a", 3)
    assert cut("\u0301" * 100, 10) == ("\u0301" * 10, 90)  # nothing but marks: cut at the width all the same

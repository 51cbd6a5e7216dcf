"""Terminal text for a log view: escape sequences and control characters removed, the text otherwise intact,
also when a sequence is split between two pieces of a live tail, and in linear time on hostile input."""

from __future__ import annotations

import time

from services.protocol.terminal_text import CARRY_MAX, DisplayStream, for_display

RAW = (
    "\x1b[1;31mError:\x1b[0m file not found\r\n"  # colours, a Windows line break
    "\x1b]0;Blender render\x07Fra:1 Mem:10M\n"  # a window title ended by BEL
    "\x1b]8;;https://example.org\x1b\\a link\x1b]8;;\x1b\\\n"  # a hyperlink, ended by ST
    "frame=  1\rframe=  2\rframe=  3\n"  # ffmpeg's progress line
    "\x1b[2K\x1b[1Gcol\ta\x07b\x08c\x1b7\x1b8\x1b(B\n"  # erase line, cursor moves, tab kept
)
SHOWN = "Error: file not found\nFra:1 Mem:10M\na link\nframe=  1\nframe=  2\nframe=  3\ncol\tabc\n"


def test_escapes_and_controls_go_and_the_text_stays() -> None:
    assert for_display(RAW) == SHOWN
    assert for_display("plain text, ünïcode ✓\n") == "plain text, ünïcode ✓\n"
    assert for_display("bad \udcff byte") == "bad \ufffd byte"


def test_a_sequence_split_between_pieces_is_held_back_until_complete() -> None:
    for cut in range(len(RAW) + 1):
        stream = DisplayStream()
        shown = stream.feed(RAW[:cut]) + stream.feed(RAW[cut:]) + stream.flush()
        assert shown == SHOWN, cut
    stream = DisplayStream()
    assert "".join(stream.feed(c) for c in RAW) + stream.flush() == SHOWN


def test_an_endless_escape_is_not_held_back_for_ever() -> None:
    stream = DisplayStream()
    shown = stream.feed("\x1b]0;" + "t" * (CARRY_MAX * 3))
    assert len(stream.carry) <= CARRY_MAX and shown.startswith("0;ttt")


def test_hostile_input_takes_linear_time() -> None:
    for text in ("\x1b[" * 500_000, "\x1b]" * 500_000, "\x1b[" + "1" * 1_000_000, "\x1b[31m\x1b[0m\r" * 100_000):
        started = time.perf_counter()
        for_display(text)
        DisplayStream().feed(text)
        assert time.perf_counter() - started < 3.0

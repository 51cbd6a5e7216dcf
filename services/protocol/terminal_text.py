"""Text someone else wrote (a job's name, a task's output, a token's label), made safe to print to a terminal."""

from __future__ import annotations

import re
import unicodedata


def escaped(text: str, keep: str = "") -> str:
    """`text` with every character that is not printable (control characters, line breaks, bidirectional
    overrides) written as repr writes it (\\x1b, \\n, \\u202e), except those in `keep`: printed as it is, it could
    move the cursor, retitle the window or make a line look like the printing command's own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def first_control(text: str) -> int | None:
    """Where the first control character (U+0000-U+001F, U+007F-U+009F) or lone surrogate (bytes that were not
    UTF-8) of `text` is, else None. Spaces of any kind and bidirectional marks are not counted: a path or a secret
    may hold them."""
    if text.isprintable():
        return None
    return next((i for i, c in enumerate(text) if unicodedata.category(c) in ("Cc", "Cs")), None)


# what may not be parted from the character before it: combining marks, a zero-width joiner's emoji sequence, an
# emoji's variation selector; a cut that split them would print a different character than the line holds
_JOINING = frozenset("\u200d\ufe0e\ufe0f")
_BACK_OFF_MAX = 32  # a line of only combining marks is still cut, near the width


def cut(text: str, width: int) -> tuple[str, int]:
    """`text`'s first `width` characters or fewer, never parting a character from its combining marks or an emoji
    sequence, and how many characters were left off (0: `text` whole)."""
    if len(text) <= width:
        return text, 0
    end = width
    while end > width - _BACK_OFF_MAX and end > 1 and _joins(text[end - 1], text[end]):
        end -= 1
    if _joins(text[end - 1], text[end]):  # no place to cut within reach: cut at the width after all
        end = width
    return text[:end], len(text) - end


def _joins(before: str, after: str) -> bool:
    return after in _JOINING or before == "\u200d" or unicodedata.category(after).startswith("M")


# Terminal escape sequences, for a view that shows a program's output as text (a task log): colours, cursor
# moves, line erasing, window titles and hyperlinks mean nothing there. Possessive quantifiers keep a long run of
# parameters, or of unterminated sequences, linear.
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*+[ -/]*+[@-~]"  # CSI: colours, cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*+(?:\x07|\x1b\\)"  # OSC: window title, hyperlinks; ended by BEL or ST
    r"|\x1b[PX^_][^\x1b]*+\x1b\\"  # DCS, SOS, PM, APC strings, ended by ST
    r"|\x1b[ -/]*+[0-~]"  # the other escapes: character sets, keypad modes, ESC 7 / ESC 8
    r"|\r\n?"  # a line break (\r\n) or a progress line rewritten with \r: a line each, as the Worker logs it
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other control character: C0 (tab and newline kept), DEL, C1
    r"|[\ud800-\udfff]"  # a lone surrogate (bytes that were not UTF-8): Qt cannot show one
)
# What may end a piece of text that the next piece completes: an escape begun, or a \r whose \n is still to come
_BEGUN = re.compile(r"\x1b(?:\[[0-?]*+[ -/]*+|\][^\x07\x1b]*+\x1b?|[PX^_][^\x1b]*+\x1b?|[ -/]*+)?|\r")
CARRY_MAX = 4096  # an escape begun is held back at most this long: a longer one is no escape, it is shown


def _replacement(m: re.Match[str]) -> str:
    found = m.group()
    if found[0] == "\r":
        return "\n"
    return "\ufffd" if "\ud800" <= found <= "\udfff" else ""


def for_display(text: str) -> str:
    """`text` as a log view shows it: escape sequences (CSI, OSC, DCS and the others) and control characters
    removed, tab and newline kept, \\r\\n and a lone \\r made a newline, a lone surrogate shown as U+FFFD."""
    if text.isprintable():
        return text
    return _SEQUENCE.sub(_replacement, text)


class DisplayStream:
    """`for_display` over a text that arrives in pieces (a live log tail): an escape sequence or a \\r\\n split
    between two pieces is held back until the next one completes it, never shown half-removed."""

    def __init__(self) -> None:
        self.carry = ""

    def feed(self, piece: str) -> str:
        text = self.carry + piece if self.carry else piece
        self.carry = ""
        start = self._begun(text)
        if start is not None:
            text, self.carry = text[:start], text[start:]
        return for_display(text)

    def flush(self) -> str:
        """What was held back, at the end of the text."""
        text, self.carry = self.carry, ""
        return for_display(text)

    @staticmethod
    def _begun(text: str) -> int | None:
        """Where an unfinished escape sequence (or a \\r) at the end of `text` starts, else None."""
        if text.endswith("\r"):
            return len(text) - 1
        window = max(0, len(text) - CARRY_MAX)
        last = text.rfind("\x1b", window)
        if last < 0:
            return None
        # ESC \ ending an OSC string may itself be split: the string's own ESC is then the one before
        for start in (text.rfind("\x1b", window, last), last):
            if start >= 0 and _BEGUN.fullmatch(text, start) is not None:
                return start
        return None

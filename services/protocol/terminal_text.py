"""Text someone else wrote (a job's name, a task's output, a token's label), made safe to print to a terminal."""

from __future__ import annotations

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

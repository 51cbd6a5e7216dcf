"""What a path handed to a program on a worker must not be: a URL it would fetch, an option it would obey, or
text that is not a file name at all (control characters, which also forge lines of the task's log).

The Server refuses such paths in a job's settings, naming the setting; the Worker checks them again before it
starts the program, for tasks stored before the Server checked.
"""

from __future__ import annotations

import re
import unicodedata

# what ffmpeg takes for a protocol before a colon (`http:`, `concat:`, `pipe:`, `subfile,,…:`); a single letter is
# a drive (`C:`)
_SCHEME = re.compile(r"[A-Za-z0-9+.-][A-Za-z0-9+.,-]+:")
# explicit bidirectional overrides and isolates, which make a path read other than it is
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# control characters, and the line and paragraph separators Python's splitlines and text views break lines at
_LINE_BREAKING = ("Cc", "Zl", "Zp")


def not_a_file_path(path: str) -> str | None:
    """Why `path` cannot be given to a program as a file's path; None when it can."""
    if path.startswith("-"):
        return "a path cannot start with '-': the program would read it as an option"
    if scheme := _SCHEME.match(path):
        return (
            f"a path cannot start with {scheme.group()!r}: programs read that as a URL or protocol to open, "
            "not a file; give the file's path"
        )
    if (c := control_character(path)) is not None:
        return f"a path cannot contain the control character {c!r}"
    return None


def control_character(text: str) -> str | None:
    """The first control character (a line break, an escape; U+2028 and U+2029, which split lines as well), or
    bidirectional override in `text`, if any."""
    if text.isprintable():  # nearly always: one pass in C
        return None
    return next((c for c in text if c in _BIDI_CONTROLS or unicodedata.category(c) in _LINE_BREAKING), None)

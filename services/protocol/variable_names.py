"""The names of path variables as paths refer to them (`{render_root}`), and what a Manager tells the Server of its
own, so the Server can refuse a job whose path names a variable no worker of the farm knows (`{renderroot}`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
NAME_MAX = 100
REPORTED_MAX = 500  # names a Manager reports; a Manager with more reports none, and the Server checks nothing
BRACED = re.compile(r"\{(" + NAME_PATTERN + r")\}")
_NAME = re.compile(NAME_PATTERN)


def referenced(text: str) -> list[str]:
    """The variable names `text` refers to, in order (`{render_root}/{shot}` → render_root, shot)."""
    return BRACED.findall(text) if "{" in text else []


def reportable(names: Iterable[str]) -> list[str] | None:
    """The names a path can refer to, sorted, for the Server; None when there are too many to report."""
    usable = sorted({n for n in names if len(n) <= NAME_MAX and _NAME.fullmatch(n)})
    return usable if len(usable) <= REPORTED_MAX else None

"""How large a worker's stored updates are: an update over a row's size stored as several, a row the Manager
refused as too large cut to fit, and the JSON both are measured in.

A task printing long lines fast made single updates larger than any request the Manager takes (refused with
413 for ever, the worker wedged, 2 GB of memory); buffer.py stores and sends rows of at most ROW_MAX_CHARS.
"""

from __future__ import annotations

import json
import re
from typing import Any

# one stored update's JSON: a task printing long lines fast made single updates larger than any request the
# Manager takes (refused with 413 for ever, the worker wedged); a larger one is stored as several, in order
ROW_MAX_CHARS = 1_000_000
# after a 413 (a Manager whose limit is lower than the default) batches shrink, never below this
SMALLEST_BATCH_CHARS = 64_000
_SPLIT_FIELDS = ("log_lines", "output_files")


def dumps(update: Any) -> str:
    """The update as stored and sent, with any NUL a task printed replaced by U+FFFD, as undecodable bytes are:
    the Manager refuses NULs (a 422, which would drop the task's updates), and no database column takes them."""
    body = json.dumps(update, separators=(",", ":"))
    if "\\u0000" in body:  # rare: a second pass rather than a scan of every string of every update
        body = json.dumps(_without_nul(update), separators=(",", ":"))
    return body


def parts(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """An update too large for one row as several, each within ROW_MAX_CHARS of JSON: its log lines (and output
    files) in order, in parts of their own first; the other fields (a status among them) with the last part."""
    rest = {k: v for k, v in fields.items() if k not in _SPLIT_FIELDS}
    budget = ROW_MAX_CHARS - len(dumps(rest)) - 200  # the seq, the hand-out, the list's name
    out: list[dict[str, Any]] = []
    for name in _SPLIT_FIELDS:
        chunk: list[Any] = []
        size = 0
        for item in fields.get(name) or ():
            n = len(dumps(item)) + 1
            if chunk and size + n > budget:
                out.append({name: chunk})
                chunk, size = [], 0
            chunk.append(item)
            size += n
        if chunk:
            out.append({name: chunk})
    if rest or not out:
        out.append(rest)
    return out


_LEFT_OUT_NOTE = "[tablao] {} log lines left out here: the update was larger than the Manager takes"
_LEFT_OUT = re.compile(re.escape(_LEFT_OUT_NOTE).replace(r"\{\}", r"(\d+)"))


def cut_to(update: dict[str, Any], target: int) -> dict[str, Any]:
    """The update within `target` characters of JSON: log lines kept from both ends, the middle left out with a
    line saying how many; output files past what fits left out (the Manager's log of them is a convenience)."""
    lines: list[str] = update.pop("log_lines", None) or []
    files: list[str] = update.pop("output_files", None) or []
    budget = target - len(dumps(update)) - 200
    sizes = [len(dumps(line)) + 1 for line in lines]
    head, tail, used = 0, 0, 0
    while head + tail < len(lines):
        i = head if head <= tail else len(lines) - 1 - tail
        if used + sizes[i] > budget:
            break
        used += sizes[i]
        if head <= tail:
            head += 1
        else:
            tail += 1
    if head + tail < len(lines):
        # a row cut before (each 413 halves the size) counts the lines its own note stood for
        gone = sum(int(m[1]) if (m := _LEFT_OUT.fullmatch(line)) else 1 for line in lines[head : len(lines) - tail])
        note = _LEFT_OUT_NOTE.format(gone)
        lines = [*lines[:head], note, *lines[len(lines) - tail :]]
        used += len(dumps(note)) + 1
    kept: list[str] = []
    for path in files:
        used += len(dumps(path)) + 1
        if used > budget:
            break
        kept.append(path)
    return {**update, **({"log_lines": lines} if lines else {}), **({"output_files": kept} if kept else {})}


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value

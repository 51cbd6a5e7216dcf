"""Reading a file a person named on a command line (a job, a token, a secret, a table of path variables).

Such a file is small by nature, but the name can be anything: `/dev/zero` was read until memory ran out (3.8 GB
in ten seconds), a 4 GB .blend given to `tablao submit` by mistake was read whole before being found not to be
text, and a binary secret file stopped the worker with a traceback. Reading stops one byte past the limit, and
each failure is one line naming the file and what it should be.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
SECRET_BYTES = 64 * KIB  # a token or a registration secret is a few dozen characters
STDIN = Path("-")  # the name that means standard input where a command takes it (`tablao submit -`)


def shown_name(path: Path) -> str:
    """How an error names `path`: standard input for `-`."""
    return "standard input" if path == STDIN else str(path)


class UnreadableFile(ValueError):
    """Why a named file cannot be used: `reason` alone, or the whole line naming the file as the message."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {shown_name(path)}: {reason}")
        self.path = path
        self.reason = reason


def _size(limit: int) -> str:
    return (
        f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit // KIB} KiB" if limit % KIB == 0 else f"{limit} bytes"
    )


def read_named_text(path: Path, limit: int, what: str, *, dash_is_stdin: bool = False) -> str:
    """The UTF-8 text of `path`, at most `limit` bytes of it; `what` says what the file should be ("a JSON job or
    an Open Job Description template") in the error. With `dash_is_stdin`, `-` is standard input."""
    try:
        if dash_is_stdin and path == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            # not blocking at the open: a named pipe no one writes to held the command for ever, saying nothing;
            # opened so, it reads as empty (a pipe with a writer, `<(command)`, reads as before)
            nonblocking = getattr(os, "O_NONBLOCK", 0)  # (POSIX: Windows has no named pipes on a path)
            fd = os.open(path, os.O_RDONLY | nonblocking)
            with os.fdopen(fd, "rb") as f:
                if nonblocking:
                    os.set_blocking(fd, True)  # a writer's bytes are waited for, as by any read
                data = f.read(limit + 1)
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise UnreadableFile(path, f"it is over {_size(limit)}, so not {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(path, f"it is not text (UTF-8), so not {what}") from None

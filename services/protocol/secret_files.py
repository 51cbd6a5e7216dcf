"""Secrets kept in files (the admin token, a Manager's token, the worker registration secret): readable by their
owner only from the first byte, and replaced in one step so a crash never leaves an empty or half-written one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_secret(path: Path, secret: str) -> None:
    """Write `secret` to `path` (mode 0600): a temporary file synced to disk, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o600)  # an earlier leftover of the same name kept its own mode through O_TRUNC
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_secret(path: Path) -> str | None:
    """The secret in `path`; None when there is no file or it holds nothing (a crash of an older writer).

    ValueError naming the file when it is not UTF-8 text (hand-edited, or another file put in its place)."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None

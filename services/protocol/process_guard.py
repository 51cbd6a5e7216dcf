"""Keeps a service's secrets out of reach of other processes of the same user (task processes above all).

Two holes stay open on Linux even when task processes are confined: `/proc/PID/environ` shows the
environment a process was started with (unsetenv does not erase it), and a same-user process may read
another's memory and open files unless that process is marked non-dumpable. Each service's command line
calls `harden()` first thing and `forget_env()` once it has read its secrets.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from pathlib import Path

_PR_SET_DUMPABLE = 4


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def harden() -> bool:
    """Mark this process non-dumpable: no core files, and `/proc/PID/{environ,mem,fd}` closed to same-user peers.

    Programs this process starts are dumpable again after exec, so tasks are unaffected. Returns whether
    the call took effect (False off Linux).
    """
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)


def forget_env(names: Iterable[str]) -> None:
    """Remove these variables from the environment and overwrite them where `/proc/PID/environ` reads them."""
    libc = _libc()
    wanted = {n.encode() + b"=" for n in names if n in os.environ}
    if libc is not None and wanted:
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
        i = 0
        while (address := environ[i]) is not None:
            entry = ctypes.string_at(address)
            if any(entry.startswith(prefix) for prefix in wanted):
                # the bytes live in the block the kernel shows as /proc/PID/environ: blank the value in place
                name_length = entry.index(b"=") + 1
                ctypes.memset(address + name_length, ord("x"), len(entry) - name_length)
            i += 1
    for name in names:
        os.environ.pop(name, None)


def private_files() -> int:
    """From now on, files and folders this process creates are its user's only (0600, 0700).

    Returns the previous mask, which the worker gives back to the programs it starts (render outputs keep
    the farm's usual permissions).
    """
    return os.umask(0o077)


def private_dir(path: Path) -> None:
    """Create `path` if needed and make it 0700 (also when an older version created it readable by all)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sys.platform != "win32":
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create `path` empty if missing and make it 0600; SQLite gives its WAL and journal files the same mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if sys.platform != "win32":
        path.chmod(0o600)

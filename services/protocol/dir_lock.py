"""One process per data folder: an OS file lock held for the process's life, naming its holder.

A Server on a SQLite database, a Manager's store, a Worker's buffer and credentials, a local farm's supervisor:
each is one process's at a time, and a second one started on the same folder would corrupt it quietly (two
Workers sending one buffer's updates, two Managers claiming for one store). The lock is `flock` (POSIX) or
`msvcrt.locking` (Windows) on a file in the folder; the OS drops it when the process ends, however it ends,
so a crash never leaves a stale lock behind. The holder writes its pid into the file, so the refusal can name it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

# a probe (`held_elsewhere`) holds the lock for a moment: a process starting meanwhile tries again this long
# before it concludes that another one holds it
PATIENCE_SECONDS = 0.5
_RETRY_SECONDS = 0.02


class InUse(RuntimeError):
    """Another running process holds the lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is held by {holder}")


class DirLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, patience: float = PATIENCE_SECONDS) -> None:
        """Take the lock, waiting up to `patience` seconds for a probe to let go; InUse if another holds it.
        On a file system without locks (NFS without its lock service) the folder is used unguarded, saying so."""
        if self._fd is not None:
            return
        fd = _open(self.path)
        deadline = time.monotonic() + patience
        while True:
            try:
                _lock(fd)
                break
            except OSError as exc:
                if exc.errno not in _HELD:
                    log.warning(
                        "cannot lock %s (%s): a second process on this folder would not be refused", self.path, exc
                    )
                    break
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise InUse(self.path, holder_pid(self.path)) from None
                time.sleep(_RETRY_SECONDS)
        self._fd = fd
        with contextlib.suppress(OSError):  # the pid only names the holder in a refusal
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd is not None:
            _close(self._fd)
            self._fd = None

    def held_elsewhere(self) -> bool:
        """True if another process holds the lock now: tries it and lets go at once, writing nothing."""
        if self._fd is not None:
            return False
        try:
            fd = _open(self.path)
        except OSError:
            return False
        try:
            _lock(fd)
        except OSError as exc:
            os.close(fd)
            return exc.errno in _HELD
        _close(fd)
        return False


def holder_pid(path: Path) -> int | None:
    """The pid the holder wrote, if it can be read."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


if sys.platform == "win32":
    import msvcrt

    # a byte far past the pid: Windows locks are mandatory, and the pid must stay readable to others
    _LOCK_OFFSET = 1 << 20
    _HELD = {errno.EACCES, errno.EDEADLOCK}

    def _lock(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _close(fd: int) -> None:
        # unlocked before the close: Windows frees a lock left at close only when it gets round to it
        with contextlib.suppress(OSError):
            os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)

else:
    import fcntl

    _HELD = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _close(fd: int) -> None:
        os.close(fd)  # closing the descriptor releases the lock

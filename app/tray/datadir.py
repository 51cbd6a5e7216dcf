"""The tray's data folder: checked before Qt loads, created private, and its log file kept private.

Qt-free, so `tablao tray` refuses an unusable `--data-dir` in one line before any window or icon. Folders the
tray creates are 0700; a folder that already exists (an admin's shared folder) keeps its mode: only the files
holding secrets (the worker's log) are made 0600.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import platformdirs

LOG_NAME = "worker.log"  # the tray's worker's log, which the tray's own warnings join; the artist's Show log


class DataDirError(ValueError):
    """A data folder the tray cannot use; the message names the path and the reason."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tablao")) / "tray-worker"


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents 0700; folders that exist keep their modes."""
    for missing in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
        missing.mkdir(mode=0o700, exist_ok=True)
        if sys.platform != "win32":
            missing.chmod(0o700)  # mkdir's mode is masked by the umask


def prepare_data_dir(folder: Path) -> None:
    """Create `folder` if needed and check it is a writable folder, or raise DataDirError saying why."""
    if folder.exists() and not folder.is_dir():
        raise DataDirError(f"{folder}: it is a file, not a folder")
    try:
        make_private_dirs(folder)
    except OSError as exc:
        raise DataDirError(f"{folder}: cannot be created ({exc.strerror or exc})") from exc
    if not folder.is_dir():  # a parent that is a file, a dangling link
        raise DataDirError(f"{folder}: not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tablao-write-check-", dir=folder)
    except OSError as exc:
        raise DataDirError(f"{folder}: cannot be written to ({exc.strerror or exc})") from exc
    os.close(fd)
    Path(probe).unlink()


def private_log(path: Path) -> None:
    """Make the worker's log 0600 (it names the Manager, the worker's id, jobs and tasks), creating its folder
    0700 when missing.

    QProcess would create the file with the session's umask (0644, usually): it is created here first, and a
    file left by an older version gets this mode too. An existing folder keeps its mode (a shared --data-dir).
    """
    make_private_dirs(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    if sys.platform != "win32":
        path.chmod(0o600)

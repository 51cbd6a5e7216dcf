"""Processes a task left running when its worker was killed outright (SIGKILL, a crash, the OOM killer).

A task's own process dies with the worker (the parent-death signal), but what it started (a wrapper script's
Blender or ffmpeg, `sh -c 'sleep 300; …'`'s sleep) is reparented and goes on, using the machine and writing
frames, while the task, back in the queue, runs again. Every process a task starts carries a mark in its
environment standing for the worker's data directory (a hash of its path: a task learns nothing of where the
worker keeps its files, and no `TABLAO_*` variable reaches a task), which its children inherit; a worker that
starts with that data directory (its lock held: no other worker uses it) ends the marked processes it finds
before it takes a task. A job cannot set the mark (task_env.py denies it, and the worker sets it last); a
process a task starts with a forged one is only ever ended by that worker.

Linux only (it reads /proc/PID/environ, readable for the worker's own user and by root); elsewhere nothing is
found. A process that rewrote its environment is not found.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

log = logging.getLogger("tablao.worker.leftovers")

MARK = "RENDER_FARM_TASK"
SCAN_SECONDS = 10.0


def mark_of(data_dir: Path) -> str:
    """The mark's value for the worker with this data directory."""
    return "tablao-" + hashlib.sha256(str(data_dir.resolve()).encode(errors="surrogateescape")).hexdigest()[:24]


def find(data_dir: Path, uids: frozenset[int] | None = None, proc: Path = Path("/proc")) -> list[int]:
    """The processes carrying this worker's mark, oldest pid first; not the calling process. `uids`: only those
    owned by these users (the worker's own, and the one it runs tasks as) are looked at."""
    wanted = f"{MARK}={mark_of(data_dir)}".encode()
    me = os.getpid()
    found: list[int] = []
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if uids is not None and entry.stat().st_uid not in uids:
                continue
            environ = (Path(entry.path) / "environ").read_bytes()
        except OSError:  # gone meanwhile, another user's, a kernel thread
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def end(data_dir: Path, uids: frozenset[int] | None = None, within: float = SCAN_SECONDS) -> list[int]:
    """End (SIGKILL) the processes an earlier run of this worker left; returns their pids, said in the log.

    The scan runs in a thread of its own for at most `within` seconds: reading a process's environment waits
    for its memory map, which a process stuck in the kernel (a dead network share) may hold for good, and a
    worker must start all the same."""
    if not sys.platform.startswith("linux"):
        return []
    result: list[list[int]] = []
    scan = threading.Thread(target=lambda: result.append(find(data_dir, uids)), name="leftovers", daemon=True)
    scan.start()
    scan.join(within)
    if not result:
        log.warning(
            "could not look at every process within %.0f s for what an earlier run of this worker left running "
            "(one may be stuck in the kernel, on a network share); starting without", within,
        )  # fmt: skip
        return []
    ended: list[int] = []
    for pid in result[0]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        ended.append(pid)
    if ended:
        log.warning(
            "ended %d process(es) that tasks of this worker's earlier run left running (pids %s): the worker had "
            "been killed outright; their tasks were handed out again",
            len(ended), ", ".join(map(str, ended[:20])) + (" …" if len(ended) > 20 else ""),
        )  # fmt: skip
    return ended


def task_uids(run_as: str | None) -> frozenset[int] | None:
    """Whose processes a task's may be: the worker's user's, and the user it runs tasks as (None: anyone's)."""
    if sys.platform == "win32":
        return None
    uids = {os.getuid()}
    if run_as:
        import pwd

        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(run_as).pw_uid)
    return frozenset(uids)

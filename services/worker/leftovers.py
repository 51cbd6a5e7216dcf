"""Processes a task left running when its worker was killed outright (SIGKILL, a crash, the OOM killer).

A task's own process dies with the worker (the parent-death signal), but what it started (a wrapper script's
Blender or ffmpeg, `sh -c 'sleep 300; …'`'s sleep) is reparented and goes on, using the machine and writing
frames, while the task, back in the queue, runs again. Every process a task starts carries a mark in its
environment naming the worker's data directory, which its children inherit; a worker that starts with that data
directory (its lock held: no other worker uses it) ends the marked processes it finds before it takes a task.

Linux only (it reads /proc/PID/environ, readable for the worker's own user and by root); elsewhere nothing is
found. A process that rewrote its environment is not found.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("tablao.worker.leftovers")

MARK = "TABLAO_TASK_OF"  # denied to a job's own variables (task_env.py: TABLAO_*), so no job sets it


def mark_of(data_dir: Path) -> str:
    """The mark's value for the worker with this data directory."""
    return str(data_dir.resolve())


def find(data_dir: Path, proc: Path = Path("/proc")) -> list[int]:
    """The processes carrying this worker's mark, oldest pid first; not the calling process."""
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
            environ = (Path(entry.path) / "environ").read_bytes()
        except OSError:  # gone meanwhile, another user's, a kernel thread
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def end(data_dir: Path) -> list[int]:
    """End (SIGKILL) the processes an earlier run of this worker left; returns their pids, said in the log."""
    ended: list[int] = []
    for pid in find(data_dir):
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

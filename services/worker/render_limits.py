"""How much of the machine render processes may take: CPU threads and a lower OS priority.

Set once per worker process (`configure`), applied by the process runner to every command it starts: a
lower priority (nice 10 on POSIX, BELOW_NORMAL_PRIORITY_CLASS on Windows) keeps an artist's own programs
responsive, and a thread limit pins renders to N CPUs (Linux, Windows) and sets the usual thread variables
(OMP_NUM_THREADS and friends) that renderers and libraries read.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

NICE_LOW = 10
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TBB_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class RenderLimits:
    threads: int | None = None  # None: all CPUs
    low_priority: bool = False

    def __post_init__(self) -> None:
        if self.threads is not None and not 1 <= self.threads <= 4096:
            raise ValueError("render threads must be within 1..4096")


_current = RenderLimits()


def configure(limits: RenderLimits) -> None:
    global _current
    _current = limits


def current() -> RenderLimits:
    return _current


def preexec() -> Callable[[], None] | None:
    """POSIX: lower the priority in the child between fork and exec, before it can start anything.

    One system call and no Python locks, which is what keeps a pre-exec function safe in a threaded program.
    """
    if _current.low_priority and sys.platform != "win32":
        return _lower_priority
    return None


def _lower_priority() -> None:
    os.nice(NICE_LOW)


def creationflags() -> int:
    """Windows: the priority class set before the process runs its first instruction."""
    if _current.low_priority:
        return int(getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0))
    return 0


def child_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """The command's environment with the thread variables set; None (inherit) when there is no limit."""
    if _current.threads is None:
        return dict(env) if env is not None else None
    out = dict(env) if env is not None else dict(os.environ)
    for name in _THREAD_VARIABLES:
        out[name] = str(_current.threads)
    return out


def pin_this_thread() -> None:
    """Linux: pin the calling thread to N CPUs before it starts a process, which inherits the mask from its
    first instruction (`apply` after the start leaves a moment in which the process sees every CPU)."""
    if _current.threads is None or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > _current.threads:
        os.sched_setaffinity(0, cpus[: _current.threads])  # 0: this thread only


def apply(pid: int) -> None:
    """Pin a just-started process to N CPUs (its later threads and children inherit the mask)."""
    limits = _current
    if limits.threads is None:
        return
    with contextlib.suppress(psutil.Error, OSError):
        proc = psutil.Process(pid)
        if limits.threads is not None and hasattr(proc, "cpu_affinity"):
            cpus = proc.cpu_affinity() or []
            if len(cpus) > limits.threads:
                proc.cpu_affinity(cpus[: limits.threads])

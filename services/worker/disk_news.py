"""What the worker says about its update buffer's disk filling up and having room again: once per trouble.

On a nearly full disk the two alternate task after task (a write fails, cutting the write-ahead log makes room, the
next task's updates fill it again), in the same millisecond; a pair of warnings per task buried the worker's log
(a fault-injection audit). A disk that fills again soon after room was made is said to be nearly full, once, with
a reminder now and then while it goes on; a disk that then stays writable for a while is news again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("tablao.worker.buffer")

NEARLY_FULL_WINDOW = 60.0  # filled again within this long after room was made: the disk is nearly full
REMINDER_EVERY = 600.0  # while it goes on, said again this often, with how many times it filled meanwhile


class DiskNews:
    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._room_at: float | None = None  # when room was last made after the disk had filled
        self._nearly_full = False
        self._reminded_at = 0.0
        self._fills = 0  # since the last reminder, while nearly full

    def filled(self) -> None:
        now = self._clock()
        again = self._room_at is not None and now - self._room_at < NEARLY_FULL_WINDOW
        if not again:
            self._nearly_full = False
            log.warning(
                "the disk holding the worker's update buffer %s is full: task updates are kept in memory and "
                "written once space is freed; no new tasks are taken meanwhile", self.path,
            )  # fmt: skip
            return
        assert self._room_at is not None
        self._fills += 1
        if not self._nearly_full:
            self._nearly_full, self._reminded_at, self._fills = True, now, 0
            log.warning(
                "the disk holding the worker's update buffer %s is nearly full: it filled again %.1f s after room "
                "was made. The worker goes on, keeping updates in memory while it is full and taking no new task "
                "then; free space on that disk. Said again every %d minutes while it goes on",
                self.path, now - self._room_at, REMINDER_EVERY // 60,
            )  # fmt: skip
        elif now - self._reminded_at >= REMINDER_EVERY:
            log.warning(
                "the disk holding the worker's update buffer %s is still nearly full: it filled %d times in the "
                "last %d minutes", self.path, self._fills, round((now - self._reminded_at) / 60),
            )  # fmt: skip
            self._reminded_at, self._fills = now, 0

    def room(self) -> None:
        self._room_at = self._clock()
        if not self._nearly_full:
            log.warning(
                "the worker's update buffer %s has room again: the updates kept in memory are stored", self.path
            )

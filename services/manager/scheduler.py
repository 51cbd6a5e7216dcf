"""The Manager's scheduling policy: which of the ready tasks it holds a worker gets next (pure, no I/O)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from datetime import datetime

from services.manager import host_match
from services.manager.model import HeldTask, WorkerState

SortKey = tuple[int, datetime, int, int, int]
Blocklist = dict[tuple[int, str, str], int]


class ReadyQueue:
    """Ready tasks in scheduler order: job priority (high first), job age, job, task index."""

    def __init__(self) -> None:
        self._keys: list[SortKey] = []
        self._tasks: dict[SortKey, HeldTask] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[HeldTask]:
        for key in self._keys:
            yield self._tasks[key]

    def __contains__(self, task: HeldTask) -> bool:
        return task.sort_key in self._tasks

    def add(self, task: HeldTask) -> None:
        key = task.sort_key
        if key not in self._tasks:
            bisect.insort(self._keys, key)
            self._tasks[key] = task

    def remove(self, task: HeldTask) -> None:
        key = task.sort_key
        if self._tasks.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]


def can_run(task: HeldTask, worker: WorkerState, blocklist: Blocklist, threshold: int) -> bool:
    c = task.claim
    if c.type not in worker.task_types:
        return False
    if not worker.tags.issuperset(c.job_tags):
        return False
    if task.requirements is not None and not host_match.meets(task, worker):
        return False
    return blocklist.get((c.job_id, worker.id, c.type), 0) < threshold


def pick(
    ready: ReadyQueue,
    worker: WorkerState,
    blocklist: Blocklist,
    threshold: int,
    others_could_run: Callable[[HeldTask], bool],
    scan_limit: int = 10_000,
) -> HeldTask | None:
    """The first ready task this worker may run.

    A task this worker failed before is left for another worker, unless no other worker could run it.
    """
    for n, task in enumerate(ready):
        if n >= scan_limit:
            break
        if not can_run(task, worker, blocklist, threshold):
            continue
        if worker.id not in task.failed_on or not others_could_run(task):
            return task
    return None

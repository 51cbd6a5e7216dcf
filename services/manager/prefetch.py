"""A prefetch of one: while a worker runs a task, its next task is already leased to it, so it never waits.

The worker asks with `running_task_id` (TaskRequest) once its command has started; the answer is the task it
starts the moment the running one ends, without a round trip. Guarantees, with where they are kept:
- a prefetched task is handed only to an available worker whose current task is the one it says it runs
  (here), and only one at a time (WorkerState.next_task_id);
- the Manager never hands it to another worker while its worker may still start it: it comes back when the
  worker gives it back (an update with status `queued` on a task it never started: task_updates.py), asks for
  work as if it held none (it restarted), signs off, or falls silent past the worker timeout (core.take_back);
- when the current task leaves the worker, the prefetched one becomes its current one (core._release);
- fencing is unchanged: it carries its own hand-out number, and the Server lease's `attempt`.
"""

from __future__ import annotations

from services.manager.core import ManagerCore
from services.manager.model import HeldTask, WorkerState


def may_prefetch(worker: WorkerState, running_task_id: int) -> bool:
    """The worker runs the task it says it runs, holds no next task, and may take new work."""
    return worker.available and worker.current_task_id == running_task_id and worker.next_task_id is None


def next_for(core: ManagerCore, worker: WorkerState, running_task_id: int) -> HeldTask | None:
    """The worker's next task: the one it already holds (a repeated request), else the best ready one."""
    if worker.current_task_id != running_task_id:
        return None  # its report of the task before has not arrived, or the task was taken from it
    if worker.next_task_id is not None:
        held = core.tasks.get(worker.next_task_id)
        if held is not None and held.worker_id == worker.id:
            return held  # the answer to an earlier request was lost: the same hand-out again
    if not may_prefetch(worker, running_task_id):
        return None
    return core.hand_out(worker, prefetch=True)


def prefetched(core: ManagerCore) -> int:
    """How many tasks are leased to workers as their next one (the Manager's status view)."""
    return sum(1 for w in core.workers if w.next_task_id is not None)

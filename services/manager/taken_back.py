"""Runs the Server took back while a worker had them, kept so their completion still reaches the Server.

A pause takes back the tasks the Server saw only as assigned. This Manager may have handed them to workers before it
heard of the pause, and a short task often completes before its worker hears that the run is over. Its completion is
forwarded all the same: the Server keeps it when the task is still paused for this hand-out (its output is not
rendered again after the resume) and refuses it otherwise (a cancel, a newer attempt). Any other report of such a
run is refused here, as before, and its worker stops it.

In memory only, for the last `KEPT` runs: after a restart a late completion is refused and the task runs again.
"""

from __future__ import annotations

from collections import OrderedDict

from services.manager.model import HeldTask, WorkerState
from services.protocol.link import LOG_TAIL_LINES, TaskUpdate
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate

KEPT = 256  # runs: a pause of a big farm's job takes back at most one run per worker that had started it


class TakenBack:
    def __init__(self) -> None:
        self._runs: OrderedDict[int, tuple[str, HeldTask]] = OrderedDict()  # task id: (worker id, its run)

    def remember(self, task: HeldTask) -> None:
        """The task leaves this Manager while a worker holds it (call before it is forgotten)."""
        if task.worker_id is None:
            return
        self._runs[task.id] = (task.worker_id, task)
        self._runs.move_to_end(task.id)
        while len(self._runs) > KEPT:
            self._runs.popitem(last=False)

    def completion(
        self, worker: WorkerState, task_id: int, updates: list[WorkerTaskUpdate]
    ) -> tuple[HeldTask, TaskUpdate] | None:
        """The run and its update for the Server when these new updates of the worker complete a run taken back
        from it; None for anything else (the worker is told to stop, as before)."""
        kept = self._runs.get(task_id)
        if kept is None or kept[0] != worker.id:
            return None
        task = kept[1]
        if any(u.handout != task.handout for u in updates):
            return None
        if any(u.status in (TaskStatus.FAILED, TaskStatus.QUEUED) for u in updates):
            del self._runs[task_id]
            return None
        done = next((u for u in updates if u.status == TaskStatus.COMPLETED), None)
        if done is None:
            # its start or progress, sent before the end: the worker is told to stop, and offers the completion on
            # its own when the run had ended meanwhile (services/worker/buffer.py)
            return None
        del self._runs[task_id]
        start = next((u for u in updates if u.status == TaskStatus.ACTIVE), None)
        activity = next((u.activity for u in reversed(updates) if u.activity is not None), None)
        lines = [line for u in updates for line in u.log_lines]
        return task, TaskUpdate(
            task_id=task_id,
            attempt=task.claim.attempt,
            worker_id=worker.id,
            worker_name=worker.name,
            time=task.worker_time(done),
            status=TaskStatus.COMPLETED,
            started=task.worker_time(start) if start is not None else None,
            steps_done=task.claim.steps_total,
            activity=activity,
            log_tail=lines[-LOG_TAIL_LINES:],
        )

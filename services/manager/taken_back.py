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
from dataclasses import dataclass
from datetime import datetime

from services.manager.model import HeldTask, RunLog, WorkerState, reported_time
from services.protocol.link import LOG_TAIL_LINES, ClaimedTask, TaskUpdate
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate

KEPT = 4096  # runs and completions: a few hundred bytes each (no commands, no log lines)
# a completion sent: attempt, worker id and name, when it ended and started, activity
_Sent = tuple[int, str | None, str | None, datetime | None, datetime | None, str | None]


@dataclass
class Run:
    """What is kept of a run let go while a worker had it: enough to report its end, or to hold it again."""

    task_id: int
    worker_id: str
    handout: int
    attempt: int
    steps_total: int
    job_created: datetime
    started: bool
    log: RunLog  # what the run wrote to its full log here (log_cap.py)
    told: bool = False  # its worker was told to stop it (a progress report refused): it will not carry on


class TakenBack:
    def __init__(self) -> None:
        self._runs: OrderedDict[int, Run] = OrderedDict()  # by task id
        # the completions sent to the Server lately, by task (what stands_for needs, not their log lines): one the
        # Server had not taken before a pause and a resume handed the task back stands for the new hand-out
        self._completed: OrderedDict[int, _Sent] = OrderedDict()

    def note_completion(self, u: TaskUpdate) -> None:
        """Called for every completion sent (the hot path): a tuple, no copy of the update."""
        self._completed[u.task_id] = (u.attempt, u.worker_id, u.worker_name, u.time, u.started, u.activity)
        self._completed.move_to_end(u.task_id)
        if len(self._completed) > KEPT:
            self._completed.popitem(last=False)

    def stands_for(self, claim: ClaimedTask) -> TaskUpdate | None:
        """The completion of the attempt a resume follows (`claim.resumes_attempt`), sent before the claim, as the
        completion of the claim's attempt: the Server refuses the first (stale) and takes this one."""
        if claim.resumes_attempt is None:
            return None
        sent = self._completed.get(claim.id)
        if sent is None or sent[0] != claim.resumes_attempt:
            return None
        del self._completed[claim.id]
        _, worker_id, worker_name, time, started, activity = sent
        return TaskUpdate(
            task_id=claim.id, attempt=claim.attempt, worker_id=worker_id, worker_name=worker_name, time=time,
            status=TaskStatus.COMPLETED, started=started, steps_done=claim.steps_total, activity=activity,
        )  # fmt: skip

    def resumable(self, claim: ClaimedTask) -> Run | None:
        """The run of the attempt a resume follows (`claim.resumes_attempt`) when its worker started it and has not
        been told to stop it: it may carry on as the claim's hand-out (ManagerCore.add_claimed, then carried_on). A
        prefetched task never started is not one: its worker was refused it when it asked to start it."""
        run = self._runs.get(claim.id)
        if run is None or run.told or not run.started or run.attempt != claim.resumes_attempt:
            return None
        return run

    def told(self, task_id: int, worker_id: str) -> None:
        """The worker heard that the run is no longer its (may-i-run said no): it stops it, so it cannot carry on."""
        run = self._runs.get(task_id)
        if run is not None and run.worker_id == worker_id:
            run.told = True

    def carried_on(self, task_id: int) -> None:
        """The run is held again (ManagerCore.add_claimed): its updates are its worker's as before."""
        self._runs.pop(task_id, None)

    def remember(self, task: HeldTask) -> None:
        """The task leaves this Manager while a worker holds it (call before it is forgotten)."""
        if task.worker_id is None:
            return
        c = task.claim
        self._runs[task.id] = Run(
            task.id, task.worker_id, task.handout, c.attempt, c.steps_total, c.job_created, task.started, task.log
        )
        self._runs.move_to_end(task.id)
        while len(self._runs) > KEPT:
            self._runs.popitem(last=False)

    def completion(
        self, worker: WorkerState, task_id: int, updates: list[WorkerTaskUpdate]
    ) -> tuple[Run, TaskUpdate] | None:
        """The run and its update for the Server when these new updates of the worker complete a run taken back
        from it; None for anything else (the worker is told to stop, as before)."""
        run = self._runs.get(task_id)
        if run is None or run.worker_id != worker.id:
            return None
        if any(u.handout != run.handout for u in updates):
            return None
        if any(u.status in (TaskStatus.FAILED, TaskStatus.QUEUED) for u in updates):
            del self._runs[task_id]
            return None
        done = next((u for u in updates if u.status == TaskStatus.COMPLETED), None)
        if done is None:
            # its start or progress, sent before the end: the worker is told to stop, and offers the completion on
            # its own when the run had ended meanwhile (services/worker/buffer.py)
            run.told = True
            return None
        del self._runs[task_id]
        start = next((u for u in updates if u.status == TaskStatus.ACTIVE), None)
        activity = next((u.activity for u in reversed(updates) if u.activity is not None), None)
        lines = [line for u in updates for line in u.log_lines]
        update = TaskUpdate(
            task_id=task_id,
            attempt=run.attempt,
            worker_id=worker.id,
            worker_name=worker.name,
            time=reported_time(done, run.job_created),
            status=TaskStatus.COMPLETED,
            started=reported_time(start, run.job_created) if start is not None else None,
            steps_done=run.steps_total,
            activity=activity,
            log_tail=lines[-LOG_TAIL_LINES:],
        )
        self.note_completion(update)
        return run, update

"""What the Server wants of a Manager: gathered into the answer to its update batch, and announced to its claim.

Calls go bottom-up only, so a wrangler's request (cancel a task, put a worker to sleep, clear a blocklist
entry, ...) waits at the Server until the Manager's next update batch carries it back in the answer. A Manager
with nothing to report sends one only every keep-alive period (10 s); so a claim waiting at the Server ends early,
saying "instructions", when new ones appear, and the Manager sends a batch at once to collect them.

Two kinds: one-shot instructions leave the Server with the answer that carries them (pending instruction rows,
cleared blocklist entries), so their mere presence calls for a batch; standing ones are repeated in every answer
until a report shows them done (worker status requests and tag edits, forgotten workers), so only a change of
them since the claim began does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.link import JobPriority, UpdateAck
from services.server.db.tables import (
    BlocklistRow,
    ForgottenWorkerRow,
    JobRow,
    ManagerRow,
    PendingInstructionRow,
    WorkerRow,
)
from services.server.store import failures, log_copies, worker_admin


@dataclass(frozen=True, slots=True)
class Mark:
    """What a Manager's claim compares to tell new instructions from those it has already been given."""

    one_shot: bool  # instructions that leave with the next answer are waiting
    standing: tuple[object, ...]  # the repeated ones, as a comparable value

    def calls_after(self, start: Mark) -> bool:
        """True when a claim that began at `start` should end now so that its Manager collects instructions."""
        return self.one_shot or self.standing != start.standing


def mark(session: Session, manager_id: int) -> Mark:
    one_shot = (
        session.scalar(select(PendingInstructionRow.id).where(PendingInstructionRow.manager_id == manager_id).limit(1))
        is not None
        or session.scalar(
            select(BlocklistRow.job_id)
            .where(BlocklistRow.manager_id == manager_id, BlocklistRow.clear_requested.is_(True))
            .limit(1)
        )
        is not None
    )
    workers = session.execute(
        select(WorkerRow.id, WorkerRow.status_requested, WorkerRow.status_request_id, WorkerRow.tags_requested)
        .where(
            WorkerRow.manager_id == manager_id,
            (WorkerRow.status_requested.is_not(None)) | (WorkerRow.tags_requested.is_not(None)),
        )
        .order_by(WorkerRow.id)
    ).all()
    forgotten = session.scalars(
        select(ForgottenWorkerRow.worker_id)
        .where(ForgottenWorkerRow.manager_id == manager_id)
        .order_by(ForgottenWorkerRow.worker_id)
    ).all()
    standing = tuple((w, s, r, tuple(t) if t is not None else None) for w, s, r, t in workers) + tuple(forgotten)
    return Mark(one_shot, standing)


def hand_over(session: Session, manager: ManagerRow, ack: UpdateAck) -> None:
    """Put every pending instruction for this Manager into the answer to its batch; one-shot ones leave."""
    ack.unblock = failures.take_unblocks(session, manager)
    reprioritized: set[int] = set()
    for instr in session.scalars(
        select(PendingInstructionRow).where(PendingInstructionRow.manager_id == manager.id)
    ).all():
        if instr.kind == "reprioritize":
            reprioritized.add(instr.task_id)  # a job id: the priority sent is the job's current one
        else:
            if instr.kind == "upload-log":
                log_copies.note_asked(session, manager.id, instr.task_id)  # its upload is taken for a while
            {
                "cancel-task": ack.cancel_task_ids,
                "upload-log": ack.upload_log_task_ids,
                "reset-blocklist": ack.reset_blocklist_job_ids,
            }[instr.kind].append(instr.task_id)
        session.delete(instr)
    if reprioritized:
        ack.job_priorities = [
            JobPriority(job_id=job_id, priority=priority)
            for job_id, priority in session.execute(
                select(JobRow.id, JobRow.priority).where(JobRow.id.in_(sorted(reprioritized)))
            )
        ]
    ack.worker_requests, ack.worker_tags = worker_admin.instructions(session, manager)
    ack.forget_worker_ids = worker_admin.forgotten_ids(session, manager)

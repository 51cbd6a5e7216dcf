"""The one-shot orders a Server's answer (to an update batch, a lease renewal) carries, applied to the Manager:
refused updates, cancels, priorities, blocklist resets and unblocks, forgotten workers, worker requests and
tags, and log uploads.

The Server forgets them once it has answered, so an answer whose orders a failing store kept from being applied
is kept and tried again (before the next batch): applying one twice is harmless, each says what to be, not what to
change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.manager import blocklist_sync
from services.manager.core import ManagerCore
from services.manager.store import logs
from services.protocol.link import UpdateAck
from services.protocol.manager_client import LinkError, LinkRefused, ManagerClient

log = logging.getLogger("services.manager.server_link")  # the link's log, as before these had a module

UPLOAD_MAX_BYTES = 32 * 1024 * 1024  # a full log uploaded to the Server, as UTF-8 (it accepts up to 64 MiB)


class AnswerOrders:
    def __init__(self, core: ManagerCore, client: ManagerClient, backoff: Callable[[int], float]) -> None:
        self.core = core
        self.client = client
        self._backoff = backoff
        self._due: list[UpdateAck] = []  # answers whose orders are not all applied yet
        self._uploads: set[asyncio.Task[None]] = set()

    def take(self, ack: UpdateAck) -> None:
        """Apply an answer's orders; those a failing store keeps from being applied are tried again before the next
        batch (applying one twice is harmless: each says what to be, not what to change)."""
        self._due.append(ack)
        self.apply_due()

    def apply_due(self) -> None:
        while self._due:
            self._apply(self._due[0])
            del self._due[0]

    def _apply(self, ack: UpdateAck) -> None:
        for rej in ack.rejected:
            log.warning("the Server refused the update of task %s: %s", rej.task_id, rej.reason)
            self.core.drop([rej.task_id], rej.attempt)
        if ack.cancel_task_ids:
            self.core.drop(ack.cancel_task_ids, canceled=True)
        if ack.job_priorities:
            self.core.reprioritize({p.job_id: p.priority for p in ack.job_priorities})
        if ack.reset_blocklist_job_ids:
            self.core.reset_blocklist(ack.reset_blocklist_job_ids)
        if ack.unblock:
            blocklist_sync.unblock(self.core, ack.unblock)
        if ack.forget_worker_ids:
            self.core.forget_workers(ack.forget_worker_ids)
        if ack.worker_requests:
            for worker in self.core.workers.apply_instructions(ack.worker_requests):
                self.core.tell_waiting(worker)  # an idle worker waiting for a task hears of it now
        if ack.worker_tags:
            self.core.workers.apply_tags(ack.worker_tags)
        for task_id in ack.upload_log_task_ids:
            job = asyncio.create_task(self._upload_log(task_id))
            self._uploads.add(job)
            job.add_done_callback(self._uploads.discard)

    async def _upload_log(self, task_id: int) -> None:
        # the end of a log too big for one upload: what a reader of a failed task looks at first
        text = last_bytes(logs.read_tail(self.core.conn, task_id, UPLOAD_MAX_BYTES)[0], UPLOAD_MAX_BYTES)
        for tries in range(1, 6):
            try:
                await self.client.upload_log(task_id, text)
                return
            except LinkError:
                await asyncio.sleep(self._backoff(tries))
            except LinkRefused as exc:
                log.warning("the Server refused the log of task %s: %s", task_id, exc)
                return


def last_bytes(text: str, limit: int) -> str:
    """The end of `text` that is at most `limit` bytes as UTF-8, from the start of a line where it can: the
    store counts characters, and a log of accented or CJK text is up to 4 bytes each."""
    data = text.encode()
    if len(data) <= limit:
        return text
    data = data[-limit:]
    cut = data.find(b"\n")
    start = cut + 1 if 0 <= cut < len(data) - 1 else 0
    return data[start:].decode(errors="ignore")  # a line longer than `limit`: a character cut in two goes

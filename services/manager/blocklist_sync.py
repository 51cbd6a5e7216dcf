"""The Manager's blocklist as the Server sees it: reports of changed entries, and entries a wrangler cleared.

The Manager decides who is blocklisted (core.py counts failures per job, worker and task type). So the app can
show it, changed entries ride along with the next update batch (and all of them with each lease renewal, so
a Server that lost some converges); an entry a wrangler cleared comes back in the batch's answer.
"""

from __future__ import annotations

from services.manager.core import ManagerCore
from services.manager.store import tasks as store
from services.protocol.failures import BLOCKLIST_REPORT_MAX, BlocklistReport, Unblock

Key = tuple[int, str, str]


def take_reports(core: ManagerCore, everything: bool) -> tuple[list[BlocklistReport], bool, list[Key]]:
    """(reports, complete, keys taken): the keys go back to `core.blocklist_dirty` if the batch is not sent."""
    keys = sorted(core.blocklist_dirty | set(core.blocklist)) if everything else sorted(core.blocklist_dirty)
    complete = everything and len(keys) <= BLOCKLIST_REPORT_MAX
    keys = keys[:BLOCKLIST_REPORT_MAX]
    core.blocklist_dirty.difference_update(keys)
    threshold = core.config.blocklist_threshold
    reports = []
    for job_id, worker_id, task_type in keys:
        worker = core.workers.get(worker_id)
        failures = core.blocklist.get((job_id, worker_id, task_type), 0)
        name = (worker.name if worker else "")[:64]
        report = BlocklistReport(job_id=job_id, worker_id=worker_id, task_type=task_type, worker_name=name,
                                 failures=failures, threshold=threshold)  # fmt: skip
        reports.append(report)
    return reports, complete, keys


def put_back(core: ManagerCore, keys: list[Key]) -> None:
    """The batch did not reach the Server: report these with the next one."""
    core.blocklist_dirty.update(keys)


def unblock(core: ManagerCore, entries: list[Unblock]) -> None:
    """A wrangler cleared these entries: those workers may run those tasks of the job again."""
    with core.writing():
        for e in entries:
            key = (e.job_id, e.worker_id, e.task_type)
            core.blocklist.pop(key, None)
            core.blocklist_dirty.add(key)  # reported as gone, so the Server's copy agrees
            store.remove_blocklist_entry(core.conn, *key)
        core.feed_waiters()  # a waiting worker may take one of those tasks now
    core.claim_wakeup.set()
    core.link_wakeup.set()  # the Server hears they are gone with the next batch

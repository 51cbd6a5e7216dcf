"""Last-rendered previews at the Server: the latest per job and per worker, from the Managers' update batches.

A Manager may report a preview only of a task it holds (or held to its end) and for its own worker; anything else
is ignored, as a repeated batch's worker states are. A preview older than the one stored (a Manager that was
away sends late) does not replace it; a time ahead of the Server's clock counts as now, so a Manager whose clock
runs ahead cannot hold a job's preview against every other Manager's. Bytes that do not begin as the image type
they claim are dropped, not refused: the batch carries task updates that must not be held back by a preview.
Each new image is announced as a `last-rendered` event without the image.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.preview import LastRendered, PreviewReport, is_image
from services.server.db.tables import LastRenderedRow, ManagerRow, TaskRow, WorkerRow
from services.server.store import events
from services.server.store.convert import aware
from services.server.store.errors import NotFound

JOB, WORKER = "job", "worker"


def apply_reports(session: Session, manager: ManagerRow, reports: list[PreviewReport]) -> None:
    now = utcnow()
    for r in reports:
        if not is_image(r.preview.content_type, r.preview.data):
            continue
        if r.time > now:
            r = r.model_copy(update={"time": now})
        task = session.get(TaskRow, r.task_id)
        if task is None or task.job_id != r.job_id or task.manager_id != manager.id:
            continue  # not this Manager's task (any more): a requeued task's late frame is not news
        worker = session.get(WorkerRow, r.worker_id)
        if worker is not None and worker.manager_id != manager.id:
            continue  # another Manager's worker: the job's preview would show it rendering this Manager's task
        job_row = _put(session, JOB, str(r.job_id), r)
        worker_row = _put(session, WORKER, r.worker_id, r) if worker is not None else None
        if job_row is None and worker_row is None:
            continue
        shown = job_row or worker_row
        assert shown is not None
        data: dict[str, Any] = to_wire(shown).model_dump(mode="json")
        data["job_version"] = job_row.version if job_row is not None else None
        data["worker_version"] = worker_row.version if worker_row is not None else None
        events.publish(session, "last-rendered", data)


def _put(session: Session, scope: str, owner: str, r: PreviewReport) -> LastRenderedRow | None:
    """Store the report as the latest of (scope, owner); None when it or a newer one is already there (a
    repeated batch carries the same one again)."""
    row = session.get(LastRenderedRow, (scope, owner))
    if row is not None and aware(row.time) >= r.time:
        return None
    p = r.preview
    fields = {
        "job_id": r.job_id, "task_id": r.task_id, "worker_id": r.worker_id, "worker_name": r.worker_name,
        "time": r.time, "content_type": p.content_type, "width": p.width, "height": p.height,
        "frame_path": p.frame_path, "frame_width": p.frame_width, "frame_height": p.frame_height, "data": p.data,
    }  # fmt: skip
    if row is None:
        row = LastRenderedRow(scope=scope, owner=owner, version=1, **fields)
        session.add(row)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
        row.version += 1
    return row


def get(session: Session, scope: str, owner: str) -> LastRenderedRow:
    row = session.get(LastRenderedRow, (scope, owner))
    if row is None:
        what = f"job {owner}" if scope == JOB else f"worker {owner!r}"
        raise NotFound(f"nothing rendered yet for {what}", field="job_id" if scope == JOB else "worker_id")
    return row


def to_wire(row: LastRenderedRow) -> LastRendered:
    return LastRendered(
        job_id=row.job_id, task_id=row.task_id, worker_id=row.worker_id, worker_name=row.worker_name,
        time=aware(row.time), content_type=row.content_type, width=row.width, height=row.height,
        frame_path=row.frame_path, frame_width=row.frame_width, frame_height=row.frame_height, version=row.version,
    )  # fmt: skip

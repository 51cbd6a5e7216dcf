"""The Server's copies of full task logs, uploaded by the Manager that ran the task when the Server asked."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from services.server.db.tables import ManagerRow, TaskRow
from services.server.store.errors import Conflict, NotFound


def store(session: Session, manager: ManagerRow, task_id: int, data_dir: Path, body: bytes) -> Path:
    task = session.get(TaskRow, task_id)
    if task is None:
        raise NotFound(f"no task with id {task_id}", field="id")
    if task.manager_id != manager.id:
        raise Conflict(f"task {task_id} is not held by this Manager", field="id")
    folder = data_dir / "task-logs" / f"job-{task.job_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"task-{task_id}.log"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)
    return path

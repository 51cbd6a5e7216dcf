"""The Server's copies of full task logs, uploaded by the Manager that ran the task when the Server asked."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from services.server.db.tables import ManagerRow, TaskRow
from services.server.store.errors import Conflict, NotFound


def store(session: Session, manager: ManagerRow, task_id: int, data_dir: Path, body: bytes) -> Path:
    """Keep the uploaded log of a task this Manager holds, replacing an earlier copy in one step."""
    task = session.get(TaskRow, task_id)
    if task is None:
        raise NotFound(f"no task with id {task_id}", field="id")
    if task.manager_id != manager.id:
        raise Conflict(f"task {task_id} is not held by this Manager", field="id")
    folder = job_folder(data_dir, task.job_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"task-{task_id}.log"
    # a file of its own for each upload: a Manager's retry may arrive while its first try is still being
    # written (or, with several Server processes, at another process); the last whole copy wins
    fd, name = tempfile.mkstemp(dir=folder, prefix=f"{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk, say: no half copy is left behind
        raise
    return path


def job_folder(data_dir: Path, job_id: int) -> Path:
    return data_dir / "task-logs" / f"job-{job_id}"


def forget_job(data_dir: Path, job_id: int) -> None:
    """A deleted job's copies go with it (after its rows are gone: a failure here leaves files, never rows)."""
    shutil.rmtree(job_folder(data_dir, job_id), ignore_errors=True)

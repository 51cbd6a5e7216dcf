"""The Server's copies of full task logs, uploaded by the Manager that ran the task when the Server asked.

An upload is taken only from the task's Manager and only within `ASKED_FOR` of the Server asking it (a user's
request, handed to the Manager with its next update batch: `note_asked`), so a Manager cannot fill the Server's
disk with logs nobody asked for. The route writes the body to a file of its own as it comes (`receiving`), never
holding it whole in memory, and `store` puts it in place of the earlier copy in one step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.server.db.tables import LogUploadAskedRow, ManagerRow, PendingInstructionRow, TaskRow
from services.server.store.convert import aware
from services.server.store.errors import Conflict

ASKED_FOR = timedelta(hours=1)  # a Manager's tries (and a retry after a lost answer) fit well inside
UPLOADS = "uploads"  # under task-logs/: bodies being received


def note_asked(session: Session, manager_id: int, task_id: int) -> None:
    """The Manager is being asked for the task's log (store/instructions.py hands the request over)."""
    session.merge(LogUploadAskedRow(task_id=task_id, manager_id=manager_id, asked=utcnow()))


def check_asked(session: Session, manager: ManagerRow, task_id: int) -> TaskRow:
    """The task, when this Manager may upload its log now; refused naming `id` otherwise."""
    task = session.get(TaskRow, task_id)
    if task is None or task.manager_id != manager.id:  # no task at all is not one it holds either (api.md)
        raise Conflict(f"task {task_id} is not held by this Manager", field="id")
    asked = session.get(LogUploadAskedRow, task_id)
    if asked is not None and asked.manager_id == manager.id and aware(asked.asked) > utcnow() - ASKED_FOR:
        return task
    pending = session.scalar(
        select(PendingInstructionRow.id).where(
            PendingInstructionRow.manager_id == manager.id,
            PendingInstructionRow.kind == "upload-log",
            PendingInstructionRow.task_id == task_id,
        )
    )
    if pending is None:
        raise Conflict(f"the Server did not ask for the log of task {task_id} (or asked over an hour ago)", field="id")
    return task


def prune_asked(session: Session, data_dir: Path) -> int:
    """A housekeeping sweep: forget requests older than ASKED_FOR, and bodies left half-received."""
    result = session.execute(delete(LogUploadAskedRow).where(LogUploadAskedRow.asked < utcnow() - ASKED_FOR))
    forget_received(data_dir)
    return int(getattr(result, "rowcount", 0) or 0)


def receiving(data_dir: Path) -> Path:
    """A new empty file to write an upload's body into as it comes (on the copies' file system: kept by a rename)."""
    folder = data_dir / "task-logs" / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    return Path(name)


def store(session: Session, manager: ManagerRow, task_id: int, data_dir: Path, received: Path) -> Path:
    """Keep the uploaded log (the file `received`, which this takes) of a task this Manager may upload now,
    replacing an earlier copy in one step; a refusal removes it."""
    try:
        task = check_asked(session, manager, task_id)
        folder = job_folder(data_dir, task.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"task-{task_id}.log"
        # each upload has a file of its own: a Manager's retry may arrive while its first try is still being
        # written (or, with several Server processes, at another process); the last whole copy wins
        received.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            received.unlink()  # a full disk, say: no half copy is left behind
        raise
    return path


def forget_received(data_dir: Path) -> int:
    """Bodies left half-received (a Server stopped mid-upload) once no upload can still be writing them; how many.
    By age, not at a start: Server processes on one machine may share the data folder."""
    folder = data_dir / "task-logs" / UPLOADS
    cutoff = (utcnow() - ASKED_FOR).timestamp()
    gone = 0
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    gone += 1
    return gone


def job_folder(data_dir: Path, job_id: int) -> Path:
    return data_dir / "task-logs" / f"job-{job_id}"


def forget_job(data_dir: Path, job_id: int) -> None:
    """A deleted job's copies go with it (after its rows are gone: a failure here leaves files, never rows)."""
    shutil.rmtree(job_folder(data_dir, job_id), ignore_errors=True)

"""Routes for a task's full log as a client reads it: where it is, and the copy a Manager uploaded.

The full log stays at the Manager that ran the task; the Server knows which one that is and where its users
reach it (each Manager reports its client address with its update batches). The app reads and follows the
log there with the user's own token (the Manager checks it with the Server). When the app cannot reach that
Manager, it asks the Server for a copy: the Server asks the Manager to upload one in the answer to its next
update batch (calls go bottom-up only) and serves it from then on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.common import Id, Int
from services.protocol.failures import LogSource
from services.protocol.states import FINISHED_TASK_STATUSES, ManagerStatus, TaskStatus
from services.server.api.deps import ConfigDep, ReadSessionDep, SessionDep, UserDep
from services.server.db.tables import ManagerRow, PendingInstructionRow, TaskRow
from services.server.store import log_copies
from services.server.store.convert import aware
from services.server.store.errors import Conflict, Invalid, NotFound
from services.server.store.farm import manager_status
from services.server.store.tasks import instruct

router = APIRouter(prefix="/tasks", tags=["task logs"])

READ_MAX = 16 * 1024 * 1024  # bytes per answer: a client pages through a bigger log


def _task(session: Session, task_id: int) -> TaskRow:
    task = session.get(TaskRow, task_id)
    if task is None:
        raise NotFound(f"no task with id {task_id}", field="id")
    return task


FINAL_AFTER_SECONDS = 60.0  # a copy received this long after its task finished holds the whole log


def copy_path(data_dir: Path, task: TaskRow) -> Path:
    """Where store.log_copies.store keeps the copy a Manager uploaded."""
    return log_copies.job_folder(data_dir, task.job_id) / f"task-{task.id}.log"


@router.get("/{task_id}/log-source")
def log_source(task_id: Id, session: ReadSessionDep, _: UserDep, cfg: ConfigDep) -> LogSource:
    """Which Manager ran the task (the last hand-out) and where to read its full log."""
    task = _task(session, task_id)
    manager = session.get(ManagerRow, task.manager_id) if task.manager_id is not None else None
    path = copy_path(cfg.data_dir, task)
    return LogSource(
        task_id=task.id,
        task_status=task.status,
        manager_id=manager.id if manager else None,
        manager_name=manager.name if manager else None,
        manager_url=manager.client_url if manager else None,
        manager_online=manager is not None and manager_status(manager, cfg.lease_seconds) == ManagerStatus.ONLINE,
        server_copy_bytes=path.stat().st_size if path.exists() else None,
        log_tail=list(task.log_tail or []),
    )


@router.get("/{task_id}/log", response_class=PlainTextResponse)
def read_copy(
    task_id: Id,
    session: ReadSessionDep,
    _: UserDep,
    cfg: ConfigDep,
    tail: Annotated[Int | None, Query(ge=1, le=READ_MAX)] = None,
    before: Annotated[Int | None, Query(ge=0, le=2**62)] = None,
    after: Annotated[Int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[Int, Query(ge=1, le=READ_MAX)] = READ_MAX,
) -> Response:
    """The uploaded copy, or part of it: `tail` (the last bytes), `before` / `after` a byte offset.

    The answer's `X-Log-First` and `X-Log-Last` are the offsets it covers and `X-Log-Earlier` says whether
    there is more before it. A `tail` or `before` part starts at a line, an `after` part (from the last one's
    `X-Log-Last`) ends at one: a cut line is left for the next page, and the pages join into the whole copy.
    """
    path = copy_path(cfg.data_dir, _task(session, task_id))
    if not path.exists():
        raise NotFound(
            f"the Server has no copy of task {task_id}'s log: ask for one (POST .../log/request)", field="id"
        )
    if sum(x is not None for x in (tail, before, after)) > 1:
        raise Invalid("give at most one of tail, before and after", field="tail")
    size = path.stat().st_size
    if tail is not None:
        start, end = max(0, size - tail), size
    elif before is not None:
        end = min(before, size)
        start = max(0, end - limit)
    else:
        start = min(after or 0, size)
        end = min(size, start + limit)
    data, start = _page(path, start, end, size, forward=tail is None and before is None)
    headers = {"X-Log-First": str(start), "X-Log-Last": str(start + len(data)), "X-Log-Earlier": str(int(start > 0))}
    return Response(data, media_type="text/plain; charset=utf-8", headers=headers)


def _page(path: Path, start: int, end: int, size: int, *, forward: bool) -> tuple[bytes, int]:
    """The bytes from `start` to `end` made a page of whole characters (each page is served as UTF-8), and where it
    starts. A forward page (`after`: where the page before ended) ends at a whole line, the rest being the next
    page's; a backward one (`tail`, `before`) begins at one. A line longer than the page is cut between characters,
    and a page smaller than one character holds that character (a `limit` of 1 served half of one)."""
    # a few bytes either side of the page: a character cut at either end is made whole (the page's start may move
    # past three bytes continuing a character, and the character then begun is up to four long)
    begin = max(0, start - 3)
    with path.open("rb") as f:
        f.seek(begin)
        around = f.read(min(size, end + 6) - begin)
    data = around[start - begin : end - begin]
    if forward:
        start += _continuation_bytes(around[start - begin :])  # an `after` inside a character (no page ends there)
        data = around[start - begin : end - begin]
        if end < size and (cut := data.rfind(b"\n")) >= 0:
            data = data[: cut + 1]
        elif end < size:
            data = whole_characters(data) or _first_character(around[start - begin :])
        return data, start
    if start > 0 and (cut := data.find(b"\n")) >= 0 and cut + 1 < len(data):
        return data[cut + 1 :], start + cut + 1  # begin at a whole line
    if end < size:
        data = whole_characters(data)  # a `before` not at a character's start
    if (skip := _continuation_bytes(data)) < len(data) or start == 0:
        return data[skip:], start + skip
    lead = start - begin  # the page holds only part of a character: the page is that character, from its start
    while lead > 0 and around[lead] & 0xC0 == 0x80:
        lead -= 1
    return _first_character(around[lead:]), begin + lead


def _continuation_bytes(data: bytes) -> int:
    """How many of `data`'s first bytes (at most three) continue a character begun before them."""
    n = 0
    while n < min(3, len(data)) and data[n] & 0xC0 == 0x80:
        n += 1
    return n


def _first_character(data: bytes) -> bytes:
    lead = data[0] if data else 0
    return data[: 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4]


def whole_characters(data: bytes) -> bytes:
    """`data` without the start of a UTF-8 character it ends in the middle of; empty when it holds only that."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # where the last character begins: ASCII or a lead byte
            length = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if length <= back else data[:-back]
    return data


def _copy_is_final(data_dir: Path, task: TaskRow) -> bool:
    """Whether the Server's copy of the task's log was received well after the task last changed, having
    finished (a canceled task's worker may still send its last lines for a while)."""
    if TaskStatus(task.status) not in FINISHED_TASK_STATUSES:
        return False
    try:
        received = copy_path(data_dir, task).stat().st_mtime
    except FileNotFoundError:
        return False
    return received > aware(task.updated).timestamp() + FINAL_AFTER_SECONDS


@router.post("/{task_id}/log/request", status_code=202)
def request_copy(task_id: Id, session: SessionDep, _: UserDep, cfg: ConfigDep) -> dict[str, object]:
    """Ask the task's Manager to upload its full log (delivered with the answer to its next update batch).

    Not asked when the Server's copy was received after the task finished (it is the whole log already): any
    user could otherwise have the Manager upload the same 32 MiB again after each delivery."""
    task = _task(session, task_id)
    if task.manager_id is None:
        raise Conflict(f"task {task_id} has not been run by any Manager", field="id")
    if _copy_is_final(cfg.data_dir, task):
        return {"task_id": task.id, "manager_id": task.manager_id, "requested": False}
    pending = session.scalar(
        select(PendingInstructionRow.id).where(
            PendingInstructionRow.manager_id == task.manager_id,
            PendingInstructionRow.kind == "upload-log",
            PendingInstructionRow.task_id == task.id,
        )
    )
    if pending is None:  # asked once until the Manager has it: repeated clicks cost nothing
        instruct(session, task.manager_id, "upload-log", [task.id])
        session.commit()
    return {"task_id": task.id, "manager_id": task.manager_id, "requested": True}

"""The Manager → Server link: claim tasks, push update batches, upload a full task log, check client tokens."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from services.protocol.common import Id
from services.protocol.link import (
    ClaimedTask,
    ClaimRequest,
    ClaimResponse,
    ClientIdentity,
    ClientTokenCheck,
    UpdateAck,
    UpdateBatch,
)
from services.server.api import hang_up
from services.server.api.deps import ConfigDep, ManagerDep, SessionDep, TokenDep, manager_by_token
from services.server.dispatch import Dispatcher
from services.server.store import auth, instructions, log_copies
from services.server.store import link as store
from services.server.store.convert import aware
from services.server.store.errors import Invalid, NotFound
from services.server.store.events import EventNotifier

router = APIRouter(prefix="/manager", tags=["manager link"])

MAX_LOG_BYTES = 64 * 1024 * 1024
WRITE_EVERY = 1024 * 1024  # bytes of an uploaded log gathered before a write to its file
# the one route whose body may be bigger than the services' body limit: app.py gives it MAX_LOG_BYTES
LOG_UPLOAD_ROUTE = ("POST", "/manager/tasks/{task_id}/log")


@router.post("/claim")
async def claim(req: ClaimRequest, request: Request, token: TokenDep, cfg: ConfigDep) -> ClaimResponse:
    """Lease up to `capacity` runnable tasks, in scheduler order, for the Manager's workers.

    With `wait_seconds` and nothing runnable, the request waits: a job submitted, resumed or requeued in this
    Server process hands its tasks straight to it (dispatch.py), and after every other committed change (a
    task requeued or completed, another Server process's work) it looks again, so a Manager hears of new work
    at once. It also ends, with `instructions` set, when new instructions for the Manager appear (a wrangler's
    request; store/instructions.py); a claim for no tasks (capacity 0) waits for those only.
    """
    writers, readers = request.app.state.write_sessions, request.app.state.read_sessions
    dispatcher: Dispatcher = request.app.state.dispatcher
    notifier: EventNotifier = request.app.state.notifier
    manager_id = 0

    def claim_once() -> tuple[list[ClaimedTask], instructions.Mark | None]:
        nonlocal manager_id
        # one short write transaction per look: no lock is held while the request waits
        with writers() as session:
            manager = manager_by_token(session, token, request)
            manager_id = manager.id
            tasks = store.claim(session, manager, req, cfg.lease_seconds)
            # only a claim that may wait needs to know: the others' Managers are busy and send batches anyway
            seen = instructions.mark(session, manager.id) if req.wait_seconds else None
            session.commit()
            return tasks, seen

    def look_for_instructions() -> instructions.Mark:
        # a claim for no tasks (the Manager's workers are all asleep or busy) waits for instructions only
        with readers() as session:
            return instructions.mark(session, manager_id)

    def give_back(task_ids: list[int]) -> None:
        with writers() as session:
            store.release_claim(session, manager_by_token(session, token, request), task_ids)
            session.commit()

    def answer(tasks: list[ClaimedTask], called: bool = False) -> ClaimResponse:
        return ClaimResponse(tasks=tasks, lease_seconds=cfg.lease_seconds, instructions=called)

    async def hand_back(tasks: list[ClaimedTask]) -> None:
        """The Manager gave up waiting (it asks again for other task types, or it stopped): what it was given
        would never reach it and would wait for the lease to expire, so it goes back to the queue."""
        if tasks:
            await run_in_threadpool(give_back, [t.id for t in tasks])

    async def hung_up(tasks: list[ClaimedTask]) -> bool:
        if not await request.is_disconnected():
            return False
        await hand_back(tasks)
        return True

    async def wait_for_work(start: instructions.Mark, gone: hang_up.HangUp) -> ClaimResponse:
        """Nothing was runnable: wait in the dispatcher for a hand-off, a commit or the deadline."""
        with dispatcher.waiting(manager_id, req, changed) as slot:
            while True:
                dispatcher.open(slot)
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    try:
                        async with asyncio.timeout(remaining):  # not wait_for, which can lose a cancel on 3.11
                            await changed.wait()
                    except TimeoutError:
                        pass
                    except asyncio.CancelledError:
                        # the Server is stopping (the request is answered 503, services/protocol/stopping.py):
                        # what was handed to this claim would otherwise wait out its lease before anyone ran it
                        await hand_back(await dispatcher.close(slot))
                        raise
                tasks = await dispatcher.close(slot)
                seen: instructions.Mark | None = None
                if not tasks and not gone.heard:
                    changed.clear()  # before looking, so a change committed during the look wakes the next one
                    if req.capacity:
                        tasks, seen = await run_in_threadpool(claim_once)
                    else:
                        seen = await run_in_threadpool(look_for_instructions)
                # a flag, not a look at the connection: the answer goes out without yielding to other requests
                if gone.heard:
                    await hand_back(tasks)
                    return answer([])
                called = seen is not None and seen.calls_after(start)
                if tasks or called or deadline - time.monotonic() <= 0:
                    return answer(tasks, called)

    deadline = time.monotonic() + req.wait_seconds
    with notifier.subscribe() as changed:
        tasks, start = await run_in_threadpool(claim_once)
        if start is None:
            return answer(tasks)
        if tasks or start.one_shot:
            return answer([] if await hung_up(tasks) else tasks, start.one_shot)
        async with hang_up.listening(request, changed) as gone:
            return await wait_for_work(start, gone)


@router.post("/updates", response_model=UpdateAck)
async def updates(batch: UpdateBatch, request: Request, token: TokenDep, cfg: ConfigDep) -> Response:
    """Apply a batch of updates exactly once (by `seq`); the answer carries instructions for the Manager."""
    writers = request.app.state.write_sessions

    def apply() -> UpdateAck:
        # one trip to the thread pool for the session, the token check and the batch: each sync dependency
        # would be a trip of its own (several per batch, tens of batches a second)
        with writers() as session:
            manager = manager_by_token(session, token, request)
            ack = store.apply_batch(
                session,
                manager,
                batch,
                cfg.lease_seconds,
                cfg.utilisation_sample_seconds,
                cfg.max_workers_per_manager,
            )
            session.commit()
            return ack

    ack = await run_in_threadpool(apply)
    return Response(ack.model_dump_json(), media_type="application/json")


@router.post("/tasks/{task_id}/log", status_code=204)
async def upload_log(task_id: Id, request: Request, token: TokenDep, cfg: ConfigDep) -> Response:
    """The full log of a task, uploaded when the Server asked for it (at most MAX_LOG_BYTES)."""
    # The token and the Server's request before the body: this route's body may be far bigger than any other's,
    # and only a Manager's asked-for log is read. In a read session, closed before the body: a write session
    # holds SQLite's write lock from its start, and a slow (or stalled) upload would keep every other write of
    # the farm waiting behind it.
    readers, writers = request.app.state.read_sessions, request.app.state.write_sessions

    def check_asked() -> None:
        with readers() as session:
            log_copies.check_asked(session, manager_by_token(session, token, request), task_id)

    await run_in_threadpool(check_asked)
    received = await run_in_threadpool(log_copies.receiving, cfg.data_dir)
    try:
        await _receive(request, received)
    except BaseException:
        received.unlink(missing_ok=True)
        raise

    def keep() -> None:
        # one trip to the thread pool for the session, the checks (again: the Manager may have been removed
        # while its body came) and the copy, as in `updates`
        with writers() as session:
            log_copies.store(session, manager_by_token(session, token, request), task_id, cfg.data_dir, received)

    await run_in_threadpool(keep)
    return Response(status_code=204)


async def _receive(request: Request, path: Path) -> None:
    """The body into `path` as it comes, a few writes per MiB: concurrent uploads hold no whole log in memory."""
    size = 0
    part = bytearray()
    with path.open("wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_LOG_BYTES:
                raise Invalid(f"the log is larger than {MAX_LOG_BYTES} bytes", field="body")
            part += chunk
            if len(part) >= WRITE_EVERY:
                await run_in_threadpool(f.write, bytes(part))
                part.clear()
        await run_in_threadpool(f.write, bytes(part))


@router.post("/client-token")
def client_token(req: ClientTokenCheck, session: SessionDep, _manager: ManagerDep, request: Request) -> ClientIdentity:
    """Who holds this API token: the Manager serves full task logs to the Server's users."""
    found = auth.user_for_token(session, req.token)
    if found is None:
        raise NotFound("unknown or revoked API token", field="token")
    request.app.state.token_uses.note(found[1].id)
    expires = aware(found[1].expires) if found[1].expires is not None else None
    return ClientIdentity(user=found[0].name, role=found[0].role, expires=expires)

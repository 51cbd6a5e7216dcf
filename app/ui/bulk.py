"""Many items without freezing the window: a bulk route in chunks the Server accepts, or one request each, a few
in flight at a time on the event loop; progress said every half second, and an outcome that counts what was done
and names what was refused.

Jobs and tasks have bulk routes (`POST /jobs/bulk`, `POST /tasks/bulk`: `chunked`); a Server from before the
tasks' one answers 404 or 405, and gets one request per task (`each`), as workers always do: a wrangler selecting
all 100,000 tasks of a job gets them requeued as fast as the Server answers, the window staying usable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import httpx

from services.protocol.jobs import BulkItemResult
from services.protocol.server_client import ApiError

K = TypeVar("K", int, str)
OLDER_SERVER = frozenset({404, 405})  # a bulk route's answer at a Server from before it (405: `/tasks/{id}` is GET)
IN_FLIGHT = 8  # requests at a time: enough to keep a Server busy, few enough not to crowd out other users
PROGRESS_SECONDS = 0.5
NAMED = 5  # refusals named one by one in the outcome


def chunks(ids: Sequence[K], size: int) -> Iterator[Sequence[K]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def each(
    ids: Sequence[K],
    send: Callable[[K], Awaitable[object]],
    progress: Callable[[int, int], None],
) -> tuple[int, list[tuple[K, str]]]:
    """`send` for every id, IN_FLIGHT at a time; returns how many went through and the refused (id, why).
    A Server that stops answering ends the run: the error is raised, saying how far it got. One id is sent as
    it is: its refusal is raised, and shown as any other error."""
    if len(ids) == 1:
        await send(ids[0])
        return 1, []
    items = iter(ids)
    refused: list[tuple[K, str]] = []
    done = 0
    last = time.monotonic()

    async def worker() -> None:
        nonlocal done, last
        for item in items:  # one shared iterator: each id is taken once
            try:
                await send(item)
            except ApiError as exc:
                if exc.status_code >= 500:
                    raise
                refused.append((item, exc.detail))
            else:
                done += 1
            now = time.monotonic()
            if now - last >= PROGRESS_SECONDS:
                last = now
                progress(done + len(refused), len(ids))

    workers = [asyncio.ensure_future(worker()) for _ in range(min(IN_FLIGHT, len(ids)))]
    try:
        await asyncio.gather(*workers)
    except (ApiError, httpx.HTTPError, OSError) as exc:
        for w in workers:
            w.cancel()
        what = exc.detail if isinstance(exc, ApiError) else str(exc) or type(exc).__name__
        raise RuntimeError(f"stopped after {done + len(refused):,} of {len(ids):,}: {what}") from exc
    finally:
        for w in workers:
            w.cancel()
    return done, refused


async def chunked(
    ids: Sequence[int],
    per_request: int,
    send_many: Callable[[Sequence[int]], Awaitable[list[BulkItemResult]]],
    send_one: Callable[[int], Awaitable[object]],
    progress: Callable[[int, int], None],
) -> tuple[int, list[tuple[int, str]]]:
    """`send_many` (a bulk route, answering each id) for `per_request` ids at a time; returns how many went through
    and the refused (id, why). At a Server without the route (404 or 405), `each` with `send_one` for the ids not
    sent yet. One id is sent with `send_one`: its refusal is raised, and shown as any other error. A Server that
    fails a request otherwise ends the run: the error is raised, saying how far it got."""
    if len(ids) == 1:
        await send_one(ids[0])
        return 1, []
    done = 0
    refused: list[tuple[int, str]] = []
    for start in range(0, len(ids), per_request):
        try:
            results = await send_many(ids[start : start + per_request])
        except ApiError as exc:
            if exc.status_code not in OLDER_SERVER:
                raise RuntimeError(f"stopped after {start:,} of {len(ids):,}: {exc.detail}") from exc
            rest_done, rest_refused = await each(ids[start:], send_one, _offset(progress, start, len(ids)))
            return done + rest_done, refused + rest_refused
        except (httpx.HTTPError, OSError) as exc:
            raise RuntimeError(f"stopped after {start:,} of {len(ids):,}: {str(exc) or type(exc).__name__}") from exc
        for r in results:
            if r.ok:
                done += 1
            else:
                refused.append((r.id, r.error or "refused"))
        progress(done + len(refused), len(ids))
    return done, refused


def _offset(progress: Callable[[int, int], None], before: int, total: int) -> Callable[[int, int], None]:
    """`each`'s progress over the ids left, told as progress over all of them."""
    return lambda n, _of: progress(before + n, total)


def outcome(done_verb: str, noun: str, total: int, done: int, refused: Sequence[tuple[object, str]]) -> str:
    """`requeued 99,998 of 100,000 tasks; 2 refused: task 5: …; task 9: …`"""
    nouns = noun if total == 1 else noun + "s"
    text = f"{done_verb} {done:,} of {total:,} {nouns}"
    if refused:
        named = "; ".join(f"{noun} {k}: {why}" for k, why in refused[:NAMED])
        more = f" and {len(refused) - NAMED:,} more" if len(refused) > NAMED else ""
        text += f"; {len(refused):,} refused: {named}{more}"
    return text

"""Sending a job submission again when its answer was lost, without making a second job.

Every submission carries an `Idempotency-Key` (the Server keeps it with the job it made, docs/api.md): after a
timeout, a connection dropped mid-request or a load balancer's 502/503/504 (the Server may have stored the job
and died before answering), the same request goes again, to the next of the farm's Servers if there are
several, and the Server answers with the job the first one made. While that job's tasks are still being stored
(409 naming the key) the client asks again every second. A Server never reached (no connection on the first
try: nothing was sent) fails at once, as every other call does, and so does any refusal, and so does the
caller's own deadline (`AnswerTimeout`: the command line said how long it waits; it names the key to use again).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from services.protocol.jobs import IDEMPOTENCY_KEY
from services.protocol.server_answers import AnswerTimeout, ApiError

T = TypeVar("T")

HEADER = IDEMPOTENCY_KEY
LOST_ANSWER_WAITS = (0.5, 1.0, 2.0, 4.0)  # seconds before each further try after a lost answer
STILL_STORING_WAIT = 1.0  # the Server's Retry-After for a job still being stored
STILL_STORING_FOR = 600.0  # a million-task job stores in a minute or two; ten is a Server that went away
_UNAVAILABLE = (502, 503, 504)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


def maybe_made(exc: BaseException) -> bool:
    """Whether a submission that failed so may have made its job (its answer lost, or its job still storing)."""
    if isinstance(exc, _NOT_SENT):
        return False
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ApiError) and (
        exc.status_code in _UNAVAILABLE or (exc.status_code == 409 and HEADER in exc.field_errors())
    )


def new_key() -> str:
    return str(uuid.uuid4())


async def until_answered(send: Callable[[], Awaitable[T]]) -> T:
    """`send()` again while its answer may have been lost, as the module says; the last failure otherwise."""
    waits = iter(LOST_ANSWER_WAITS)
    first = True
    storing_since: float | None = None
    while True:
        try:
            return await send()
        except AnswerTimeout:
            raise  # the caller's whole wait, not one lost answer
        except _NOT_SENT:
            if first:
                raise  # no Server reached and nothing sent: say so now
            wait = next(waits, None)
            if wait is None:
                raise
        except httpx.TransportError:  # sent, maybe stored, answer lost
            wait = next(waits, None)
            if wait is None:
                raise
        except ApiError as exc:
            if exc.status_code in _UNAVAILABLE:
                wait = next(waits, None)
                if wait is None:
                    raise
            elif exc.status_code == 409 and HEADER in exc.field_errors():
                storing_since = storing_since if storing_since is not None else time.monotonic()
                if time.monotonic() - storing_since > STILL_STORING_FOR:
                    raise
                wait = STILL_STORING_WAIT
            else:
                raise
        first = False
        await asyncio.sleep(wait)

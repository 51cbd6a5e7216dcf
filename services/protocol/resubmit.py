"""Sending a job submission again when its answer was lost, without making a second job.

Every submission carries an `Idempotency-Key` (the Server keeps it with the job it made, docs/api.md): after a
timeout, a connection dropped mid-request or a load balancer's 502/503/504 (the Server may have stored the job
and died before answering), the same request goes again, to the next of the farm's Servers if there are
several, and the Server answers with the job the first one made. While that job's tasks are still being stored
(409 naming the key) the client asks again every second. A Server never reached (no connection on the first
try: nothing was sent) fails at once, as every other call does, and so does any refusal, and so does an answer
past the caller's own deadline (`AnswerTimeout`); no try starts once that deadline (else ten minutes) has passed
since the first (so the whole may take up to twice it). A failure after a try that may have reached the Server is
marked (`maybe_made`), so the caller can name the key that gets its job.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import TypeVar

import httpx

from services.protocol.jobs import IDEMPOTENCY_KEY
from services.protocol.server_answers import AnswerTimeout, ApiError, BadAnswer

T = TypeVar("T")

HEADER = IDEMPOTENCY_KEY
LOST_ANSWER_WAITS = (0.5, 1.0, 2.0, 4.0)  # seconds before each further try after a lost answer
STILL_STORING_WAIT = 1.0  # the Server's Retry-After for a job still being stored
STILL_STORING_FOR = 600.0  # no try after this (without a caller's deadline): a million-task job stores in a minute
_UNAVAILABLE = (502, 503, 504)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_SENT_BEFORE = "tablao_submission_may_be_made"  # set on the failure `until_answered` ends with


def maybe_made(exc: BaseException) -> bool:
    """Whether a submission that failed so may have made its job: its answer lost (at this try or an earlier
    one, `until_answered` marks the last failure so), or its job still being stored."""
    if getattr(exc, _SENT_BEFORE, False):
        return True
    if isinstance(exc, _NOT_SENT):
        return False
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, BadAnswer) and exc.status_code < 300:  # made, and answered in a shape not understood
        return True
    return isinstance(exc, ApiError) and (
        exc.status_code in _UNAVAILABLE or (exc.status_code == 409 and HEADER in exc.field_errors())
    )


def refused(exc: BaseException) -> bool:
    """Whether the Server answered the submission with a refusal (a 4xx other than "still being stored"): after
    an earlier try's lost answer too, since a repeat of a job that was made is answered with that job."""
    return (
        isinstance(exc, ApiError)
        and not isinstance(exc, BadAnswer)
        and 400 <= exc.status_code < 500
        and not (exc.status_code == 409 and HEADER in exc.field_errors())
    )


def new_key() -> str:
    return str(uuid.uuid4())


class SameKey:
    """One key per thing submitted (a form's body, a job resubmitted) until the Server answers: pressed again after
    a lost answer, the same key gets the job the first press may have made; anything else is a new key."""

    def __init__(self) -> None:
        self._held: tuple[Hashable, str] | None = None

    def key_for(self, what: Hashable) -> str:
        if self._held is None or self._held[0] != what:
            self._held = (what, new_key())
        return self._held[1]

    def answered(self) -> None:
        self._held = None


async def until_answered(send: Callable[[], Awaitable[T]], within: float | None = None) -> T:
    """`send()` again while its answer may have been lost, as the module says; the last failure otherwise. No
    try starts more than `within` seconds (the caller's deadline; else STILL_STORING_FOR) after the first."""
    end = time.monotonic() + (within if within is not None else STILL_STORING_FOR)
    waits = iter(LOST_ANSWER_WAITS)
    sent = False  # a try may have reached the Server: the last failure says so, whatever it is
    while True:
        try:
            return await send()
        except Exception as exc:
            wait = _again_after(exc, waits, first=not sent)
            sent = sent or maybe_made(exc)
            if wait is None or time.monotonic() + wait > end:
                if sent:
                    setattr(exc, _SENT_BEFORE, True)
                raise
        await asyncio.sleep(wait)


def _again_after(exc: Exception, waits: Iterator[float], *, first: bool) -> float | None:
    """Seconds before the next try after `exc`, None for none."""
    if isinstance(exc, AnswerTimeout):
        return None  # the caller's whole wait for one answer, not one lost answer
    if isinstance(exc, _NOT_SENT):
        return None if first else next(waits, None)  # never reached and nothing sent: say so now
    if isinstance(exc, httpx.TransportError):  # sent, maybe stored, answer lost
        return next(waits, None)
    if isinstance(exc, ApiError) and exc.status_code in _UNAVAILABLE:
        return next(waits, None)
    if isinstance(exc, ApiError) and exc.status_code == 409 and HEADER in exc.field_errors():
        return STILL_STORING_WAIT  # bounded by the end above
    return None

"""The webhook deliverer: a background task of each Server process that makes the calls queued in the outbox.

It never blocks the Server: calls run on the event loop with a time limit each, and no database transaction is
open while one is in flight (rows are claimed, called, then settled in short transactions of their own). A call
that fails waits longer each time (doubling, with jitter) and is given up after `max_attempts` or `max_age`.
Delivery is at least once: each call carries an idempotency key (the `Idempotency-Key` header and the payload's
`id`), so a receiver drops the rare repeat (a Server that stopped after the receiver took a call but before it
could record that).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import httpx
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from services.protocol import VERSION
from services.protocol.common import utcnow
from services.protocol.trouble_log import TroubleLog
from services.server.store import webhooks as store
from services.server.store.events import EventNotifier
from services.server.webhook_settings import WebhookSettings

log = logging.getLogger(__name__)

ANSWER_BYTES = 300  # of a refusing receiver's answer, kept as the reason


def backoff_seconds(attempts: int, settings: WebhookSettings) -> float:
    """The wait after `attempts` failed calls: doubling from backoff_min up to backoff_max, ±20 % jitter so
    calls that failed together (a receiver down) do not all come back at the same moment."""
    base = min(settings.backoff_max, settings.backoff_min * 2 ** max(0, attempts - 1))
    return float(base * random.uniform(0.8, 1.2))


def retry_at(call: store.Call, settings: WebhookSettings, now: datetime) -> datetime | None:
    """When to try `call` again after this failed attempt, or None to give up."""
    attempts = call.attempts + 1
    if attempts >= settings.max_attempts:
        return None
    at = now + timedelta(seconds=backoff_seconds(attempts, settings))
    if at - call.created > timedelta(seconds=settings.max_age_seconds):
        return None
    return at


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Failure(NamedTuple):
    """Why a call failed; `final`: trying again cannot help (a URL httpx cannot call), so it is not retried."""

    reason: str
    final: bool = False


async def call_once(http: httpx.AsyncClient, call: store.Call) -> Failure | None:
    """Make one call; None when the receiver took it (a 2xx), else why not. Whatever the call raises is its own
    failure, never the round's: the calls made with it must still be settled."""
    try:
        body = json.dumps(call.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": call.key,
            "X-Tablao-Event": call.event,
            "X-Tablao-Attempt": str(call.attempts + 1),
            "X-Tablao-Signature": signature(call.secret, body),
        }
        async with http.stream("POST", call.url, content=body, headers=headers) as r:
            if r.is_success:
                return None
            answer = b""
            async for chunk in r.aiter_bytes():  # a little of the answer, never all of a huge one
                answer += chunk
                if len(answer) >= ANSWER_BYTES:
                    break
            reason = f"HTTP {r.status_code}"
            if r.is_redirect:
                reason += f" (redirected to {r.headers.get('location', '?')}: give the final URL)"
            text = answer[:ANSWER_BYTES].decode(errors="replace").strip()
            return Failure(f"{reason}: {text}" if text else reason)
    except httpx.TimeoutException as exc:
        return Failure(f"no answer within the time limit ({type(exc).__name__})")
    except httpx.UnsupportedProtocol as exc:  # a URL stored before the API checked it as httpx does
        return Failure(f"{_UNCALLABLE}: {exc}", final=True)
    except httpx.HTTPError as exc:
        return Failure(_reason(exc))
    except httpx.InvalidURL as exc:  # not an HTTPError: as above
        return Failure(f"{_UNCALLABLE}: {exc}", final=True)
    except UnicodeError as exc:  # idna's errors for a host name are UnicodeErrors: this URL can never be called
        return Failure(f"{_UNCALLABLE}: {_reason(exc)}", final=True)
    except Exception as exc:  # a bug, but this call's alone
        log.warning("webhook call %s to %s raised", call.key, call.url, exc_info=True)
        return Failure(_reason(exc))


_UNCALLABLE = "the URL cannot be called (not tried again: give the webhook a URL that can be)"


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Deliverer:
    """Claims due calls, makes them concurrently (bounded), and records each outcome."""

    def __init__(
        self, read_sessions: sessionmaker[Session], write_sessions: sessionmaker[Session], settings: WebhookSettings
    ) -> None:
        self.read_sessions = read_sessions
        self.write_sessions = write_sessions
        self.settings = settings
        self.http = httpx.AsyncClient(
            timeout=settings.timeout,
            follow_redirects=False,  # a redirect is reported, not followed to wherever it points
            headers={"User-Agent": f"Tablao/{VERSION} webhook"},
            limits=httpx.Limits(max_connections=settings.concurrency),
        )
        self._gate = asyncio.Semaphore(settings.concurrency)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _claim(self) -> list[store.Call]:
        # most wake-ups (every commit with events) find nothing due: a read says so without the write lock
        with self.read_sessions() as session:
            if not store.any_due(session):
                return []
        # the claim outlives one call's time limit, so no other deliverer takes a row while it is in flight
        with self.write_sessions() as session:
            calls = store.claim_due(session, self.settings.batch, self.settings.timeout + 30)
            session.commit()
            return calls

    def _settle(self, outcomes: Sequence[tuple[store.Call, Failure | None]]) -> None:
        now = utcnow()
        with self.write_sessions() as session:
            for call, error in outcomes:
                if error is None:
                    store.delivered(session, call)
                else:
                    again = None if error.final else retry_at(call, self.settings, now)
                    store.failed(session, call, error.reason, again)
            session.commit()

    async def _make(self, call: store.Call) -> tuple[store.Call, Failure | None]:
        async with self._gate:
            error = await call_once(self.http, call)
        if error is not None:
            log.info("webhook call %s (%s) to %s failed: %s", call.key, call.event, call.url, error.reason)
        return call, error

    async def run_once(self) -> int:
        """Make the calls due now (one batch); returns how many were made."""
        calls = await run_in_threadpool(self._claim)
        if not calls:
            return 0
        # call_once answers for what a call raises; should anything still escape, it is that call's failure, so
        # the others are settled all the same (an unsettled call is claimed and sent again and again)
        results = await asyncio.gather(*(self._make(c) for c in calls), return_exceptions=True)
        outcomes: list[tuple[store.Call, Failure | None]] = []
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, Exception):
                outcomes.append((call, Failure(_reason(result))))
            elif isinstance(result, BaseException):
                raise result  # a cancel ends the round, as it did
            else:
                outcomes.append(result)
        await run_in_threadpool(self._settle, outcomes)
        return len(calls)

    def prune(self) -> None:
        with self.write_sessions() as session:
            store.prune(session, self.settings.max_age_seconds)
            session.commit()


WAKE_GAP = 0.1  # seconds between rounds woken by commits: a burst of commits costs one look, not hundreds


async def deliver_forever(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    notifier: EventNotifier,
    settings: WebhookSettings,
    describe: Callable[[BaseException], str | None] = lambda _exc: None,
) -> None:
    """Run until canceled: after commits with events (a job finishing is one), and every poll_seconds.
    `describe` words the storage's trouble (a database out of reach) in one line, said again when it changes or
    a minute later; anything else is a bug, logged with its traceback."""
    deliverer = Deliverer(read_sessions, write_sessions, settings)
    storage_said = TroubleLog()
    rounds = 0
    try:
        with notifier.subscribe() as woke:
            while True:
                woke.clear()
                try:
                    made = await deliverer.run_once()
                    rounds += 1
                    if rounds % 100 == 0:
                        await run_in_threadpool(deliverer.prune)
                except Exception as exc:  # a database hiccup must not end delivery for good
                    if (message := describe(exc)) is None:
                        log.exception("webhook delivery round failed")
                    elif storage_said.due(message):
                        log.error("webhook delivery waits: %s", message)
                    made = 0
                if made >= settings.batch:
                    continue  # more may be due
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.poll_seconds):  # not wait_for, which can lose a cancel on 3.11
                        await woke.wait()
                await asyncio.sleep(WAKE_GAP)
    finally:
        await deliverer.aclose()

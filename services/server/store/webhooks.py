"""Webhooks as queries: their settings, the outbox rows a finished job adds, and claiming and settling calls.

`job_finished` runs inside the transaction that finishes the job, so the call is queued exactly when the change
commits (and not at all when it rolls back). The deliverer (services/server/webhooks.py) claims due rows for a
while, calls without holding any transaction, then settles each: delivered rows go, failed ones wait longer.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.protocol.admin import Webhook, WebhookCreate, WebhookEvent, WebhookUpdate
from services.protocol.common import plural, utcnow
from services.protocol.states import JobStatus
from services.protocol.terminal_text import escaped
from services.server.db.tables import JobRow, WebhookOutboxRow, WebhookRow
from services.server.store import counted, id_floors
from services.server.store.convert import aware
from services.server.store.errors import Conflict, NotFound
from services.server.store.unique import add_named

MAX_WEBHOOKS = 50  # per farm: each finished job adds one row per subscribed webhook
ERROR_MAX_CHARS = 500

EVENT_OF = {
    JobStatus.COMPLETED: WebhookEvent.JOB_COMPLETED,
    JobStatus.FAILED: WebhookEvent.JOB_FAILED,
    JobStatus.CANCELED: WebhookEvent.JOB_CANCELED,
}


def _chat(text: str) -> str:
    """Someone's text in a chat line: non-printable characters written out (a line break in a job's name forged a
    second line; names stored before the Server refused them keep them), and `&`, `<` and `>` escaped as Slack
    asks, so a name cannot ping the channel (`<!here>`) or make a link (`<https://…|report>`)."""
    return escaped(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(event: WebhookEvent, job: JobRow) -> str:
    """A line a chat shows as it is (Slack, Mattermost and Rocket.Chat read `text`)."""
    who = f"Job '{_chat(job.name)}' (#{job.id}) of {_chat(job.submitter)}"
    if event == WebhookEvent.JOB_COMPLETED:
        return f"{who} completed: {plural(job.tasks_completed, 'task')}."
    if event == WebhookEvent.JOB_FAILED:
        return f"{who} failed: {job.tasks_failed} of {plural(job.tasks_total, 'task')} failed."
    return f"{who} was canceled."


def _job(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "type": job.type,
        "status": job.status,
        "submitter": job.submitter,
        "priority": job.priority,
        "tags": list(job.tags or []),
        "tasks_total": job.tasks_total,
        "tasks_completed": job.tasks_completed,
        "tasks_failed": job.tasks_failed,
        "tasks_canceled": job.tasks_canceled,
        "created": aware(job.created).isoformat(),
        "updated": aware(job.updated).isoformat(),
    }


def _queue(session: Session, webhook_id: int, event: WebhookEvent, job_id: int | None, body: dict[str, Any]) -> str:
    now = utcnow()
    key = uuid.uuid4().hex  # one per event and webhook: the receiver drops a repeat it has seen
    payload = {"id": key, "event": event.value, "time": now.isoformat(), **body}
    session.add(
        WebhookOutboxRow(
            webhook_id=webhook_id,
            key=key,
            event=event.value,
            job_id=job_id,
            payload=payload,
            created=now,
            attempts=0,
            next_attempt=now,
            last_error="",
        )
    )
    return key


def job_finished(session: Session, job: JobRow, status: JobStatus) -> None:
    """Queue a call to every enabled webhook subscribed to this finish (called where a job changes status)."""
    event = EVENT_OF.get(status)
    if event is None:
        return
    hooks = session.execute(select(WebhookRow.id, WebhookRow.events).where(WebhookRow.enabled.is_(True))).all()
    for webhook_id, events in hooks:
        if event.value in events:
            _queue(session, webhook_id, event, job.id, {"text": _text(event, job), "job": _job(job)})


def queue_ping(session: Session, webhook_id: int, actor: str) -> str:
    row = get(session, webhook_id)
    text = f"Test call from the Tablao farm, sent by {actor}."
    return _queue(session, row.id, WebhookEvent.PING, None, {"text": text, "webhook": row.name})


# ---- settings --------------------------------------------------------------------------------


def get(session: Session, webhook_id: int, *, for_update: bool = False) -> WebhookRow:
    row = session.get(WebhookRow, webhook_id, with_for_update=for_update or None)
    if row is None:
        raise NotFound(f"no webhook with id {webhook_id}", field="id")
    return row


def to_wire(row: WebhookRow, pending: int = 0) -> Webhook:
    return Webhook(
        id=row.id,
        name=row.name,
        url=row.url,
        events=[WebhookEvent(e) for e in row.events],
        enabled=row.enabled,
        created=aware(row.created),
        created_by=row.created_by,
        pending=pending,
        last_delivered=aware(row.last_delivered) if row.last_delivered else None,
        last_error=row.last_error,
    )


def pending_counts(session: Session) -> dict[int, int]:
    rows = session.execute(select(WebhookOutboxRow.webhook_id, func.count()).group_by(WebhookOutboxRow.webhook_id))
    return {int(w): int(n) for w, n in rows.all()}


def list_all(session: Session) -> list[Webhook]:
    pending = pending_counts(session)
    return [to_wire(r, pending.get(r.id, 0)) for r in session.scalars(select(WebhookRow).order_by(WebhookRow.name))]


def create(session: Session, req: WebhookCreate, actor: str) -> tuple[WebhookRow, str]:
    counted.count_alone(session, counted.WEBHOOKS)  # to this transaction's end: two creates at once see each other
    # `Hook` beside `hook` would look like one webhook in every list, as users' and Managers' names (ASCII)
    same = session.scalar(select(WebhookRow.name).where(func.lower(WebhookRow.name) == req.name.lower()).limit(1))
    if same is not None:
        case = "" if same == req.name else " (webhook names must differ by more than case)"
        raise Conflict(f"a webhook named {same!r} exists already{case}", field="name")
    if (session.scalar(select(func.count()).select_from(WebhookRow)) or 0) >= MAX_WEBHOOKS:
        raise Conflict(f"a farm has at most {MAX_WEBHOOKS} webhooks: remove one first", field="quota")
    secret = "whsec_" + secrets.token_urlsafe(24)
    row = WebhookRow(
        id=id_floors.new_webhook_id(session),
        name=req.name,
        url=req.url,
        events=[e.value for e in req.events],
        secret=secret,
        enabled=req.enabled,
        created=utcnow(),
        created_by=actor,
        last_error="",
    )
    add_named(session, row, f"a webhook named {req.name!r} exists already")
    return row, secret


def change(session: Session, webhook_id: int, req: WebhookUpdate) -> WebhookRow:
    row = get(session, webhook_id)
    if req.url is not None:
        row.url = req.url
    if req.events is not None:
        row.events = [e.value for e in req.events]
    if req.enabled is not None:
        row.enabled = req.enabled
    return row


def remove(session: Session, webhook_id: int) -> None:
    row = get(session, webhook_id, for_update=True)  # of two removes at once, the second finds it gone (404)
    session.execute(delete(WebhookOutboxRow).where(WebhookOutboxRow.webhook_id == row.id))  # its calls go with it
    id_floors.note_deleted(session, id_floors.WEBHOOKS, row.id)
    session.delete(row)


# ---- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A claimed outbox row with what the deliverer needs to make the call."""

    outbox_id: int
    webhook_id: int
    key: str
    event: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int  # made before this one
    created: datetime


def any_due(session: Session) -> bool:
    now = utcnow()
    q = select(WebhookOutboxRow.id).where(WebhookOutboxRow.next_attempt <= now).limit(1)
    return session.scalar(q) is not None


def claim_due(session: Session, limit: int, claim_seconds: float) -> list[Call]:
    """Claim up to `limit` due rows for `claim_seconds`: no other deliverer takes them meanwhile.

    On PostgreSQL, rows another Server is claiming at this moment are skipped (SKIP LOCKED), and a claim that has
    not run out hides a row from everyone else; a deliverer that died mid-call leaves a claim that runs out.
    """
    now = utcnow()
    q = (
        select(WebhookOutboxRow, WebhookRow.url, WebhookRow.secret)
        .join(WebhookRow, WebhookRow.id == WebhookOutboxRow.webhook_id)
        .where(WebhookOutboxRow.next_attempt <= now)
        .where((WebhookOutboxRow.claimed_until.is_(None)) | (WebhookOutboxRow.claimed_until < now))
        .order_by(WebhookOutboxRow.next_attempt, WebhookOutboxRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=WebhookOutboxRow, skip_locked=True)
    rows = session.execute(q).all()
    until = now + timedelta(seconds=claim_seconds)
    calls = []
    for row, url, secret in rows:
        row.claimed_until = until
        calls.append(
            Call(row.id, row.webhook_id, row.key, row.event, url, secret, row.payload, row.attempts, aware(row.created))
        )
    return calls


def delivered(session: Session, call: Call) -> None:
    session.execute(delete(WebhookOutboxRow).where(WebhookOutboxRow.id == call.outbox_id))
    session.execute(
        update(WebhookRow).where(WebhookRow.id == call.webhook_id).values(last_delivered=utcnow(), last_error="")
    )


def failed(session: Session, call: Call, error: str, retry_at: datetime | None) -> None:
    """Record a failed call: try again at `retry_at`, or give up (the row goes) when it is None."""
    error = error[:ERROR_MAX_CHARS]
    if retry_at is None:
        session.execute(delete(WebhookOutboxRow).where(WebhookOutboxRow.id == call.outbox_id))
        error = f"gave up on {call.event} call {call.key} after {call.attempts + 1} attempts: {error}"[:ERROR_MAX_CHARS]
    else:
        session.execute(
            update(WebhookOutboxRow)
            .where(WebhookOutboxRow.id == call.outbox_id)
            .values(attempts=call.attempts + 1, next_attempt=retry_at, claimed_until=None, last_error=error)
        )
    session.execute(update(WebhookRow).where(WebhookRow.id == call.webhook_id).values(last_error=error))


def prune(session: Session, max_age_seconds: float) -> int:
    """Drop calls older than `max_age_seconds` that are not being made (the deliverer gives up on its own;
    this catches rows of a farm whose deliverer did not run for that long)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=max_age_seconds)
    result = session.execute(
        delete(WebhookOutboxRow).where(
            WebhookOutboxRow.created < cutoff,
            (WebhookOutboxRow.claimed_until.is_(None)) | (WebhookOutboxRow.claimed_until < now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

"""Tables of the farm's outgoing webhooks: who is called on which job events, and the durable outbox of calls.

A call is a row of `webhook_outbox`, written in the same transaction as the job change it announces, so a
Server that stops before calling loses nothing; the deliverer (services/server/webhooks.py) claims rows,
calls, and deletes each row once the receiver took it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.server.db.tables import Base, BigId


class WebhookRow(Base):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]]
    secret: Mapped[str] = mapped_column(String(100))  # signs each call's body (HMAC-SHA256)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    last_delivered: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class WebhookOutboxRow(Base):
    """One call still to make. `claimed_until` keeps other deliverers (other Server processes) off it while
    one calls; a deliverer that died mid-call leaves a claim that simply runs out."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the idempotency key the receiver sees
    event: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    created: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_webhook_outbox_due", "next_attempt", "id"),)

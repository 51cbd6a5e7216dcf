"""Limits on how many rows there may be (a user's unfinished jobs and tasks, the farm's webhooks), checked by
counting before adding, when another request may add at the same instant.

SQLite takes one write at a time, so a count and the insert after it are never split. On PostgreSQL two Server
processes' transactions each counted what was there before either inserted: twelve submissions sent at once past
a quota of three made twelve jobs, forty webhooks at once made 51 of the 50 allowed. A transaction that counts
first holds an advisory lock of that limit (and user) until it ends, so the next count sees what it added.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# the first key of each limit's advisory locks (the second is the user's, or 0); the farm's event lock is the
# one-key 7316 (store/events.py), a different key space
USER_QUOTAS = 7317
WEBHOOKS = 7318


def count_alone(session: Session, limit: int, who: str = "") -> None:
    """Before counting against `limit` (for `who`): the other transactions doing so wait until this one ends."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:limit, hashtext(:who))"), {"limit": limit, "who": who})

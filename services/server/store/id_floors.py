"""Ids never given twice: a deleted job's id, and its tasks', are not a new job's; nor a revoked token's, a
removed Manager's or webhook's a new one's.

PostgreSQL's sequences never give an id again. SQLite gives the highest id in the table plus one, so after the
newest job was deleted the next job, and its tasks, had the same ids, and whatever is kept by id outside the
tables (a Manager's task logs and blocklists, the Server's copies of logs, a client's open task view, a
webhook's receiver) took the new job for the old one; an admin's repeated `DELETE /tokens/12` (a retry) revoked
the next user's login, which had been given id 12. On SQLite a deletion notes the highest id it removed
(`id_floors`), and new ids start above both that and the table's own highest. Called in the transaction that
deletes, or that allocates under the write lock (BEGIN IMMEDIATE), so two writers never see the same floor.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.server.db.tables import ApiTokenRow, IdFloorRow, JobRow, ManagerRow, WebhookRow

JOBS = "jobs"
TASKS = "tasks"
TOKENS = "api_tokens"
MANAGERS = "managers"
WEBHOOKS = "webhooks"


def _on_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def new_job_id(session: Session) -> int | None:
    """The id a new job gets (None: the database's sequence gives it)."""
    return next_id(session, JOBS, JobRow.id) if _on_sqlite(session) else None


def new_token_id(session: Session) -> int | None:
    return next_id(session, TOKENS, ApiTokenRow.id) if _on_sqlite(session) else None


def new_manager_id(session: Session) -> int | None:
    return next_id(session, MANAGERS, ManagerRow.id) if _on_sqlite(session) else None


def new_webhook_id(session: Session) -> int | None:
    return next_id(session, WEBHOOKS, WebhookRow.id) if _on_sqlite(session) else None


def next_id(session: Session, name: str, column: InstrumentedAttribute[int]) -> int:
    """SQLite: the first id above every id `column`'s table holds or ever gave (name: its floor's)."""
    floor = select(IdFloorRow.last_id).where(IdFloorRow.name == name).scalar_subquery()
    highest = session.scalar(select(func.max(func.coalesce(select(func.max(column)).scalar_subquery(), 0),
                                             func.coalesce(floor, 0))))  # fmt: skip
    return int(highest or 0) + 1


def note_deleted(session: Session, name: str, highest: int | None) -> None:
    """SQLite: ids up to `highest` were given (and are being deleted): none of them is given again."""
    if highest is None or not _on_sqlite(session):
        return
    stmt = insert(IdFloorRow).values(name=name, last_id=highest)
    stmt = stmt.on_conflict_do_update(
        index_elements=[IdFloorRow.name], set_={"last_id": func.max(IdFloorRow.last_id, stmt.excluded.last_id)}
    )
    session.execute(stmt)

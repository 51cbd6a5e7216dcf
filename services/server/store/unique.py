"""Adding a row whose name must be unique, when another request may add the same name at the same instant.

The store reads for the name before adding, which answers every request but a race: on PostgreSQL two
transactions can both read nothing and both insert, and the second insert breaks the unique index. That is the
same 409 the read gives, not a 500; the request's session is rolled back as for any refusal.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.server.db.tables import Base
from services.server.store.errors import Conflict


def add_named(session: Session, row: Base, conflict: str) -> None:
    """Add and flush `row`; a unique name taken meanwhile is `Conflict(conflict, field="name")`."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        if "name" not in str(exc.orig).lower():  # another constraint (none is expected): not a name taken
            raise
        raise Conflict(conflict, field="name") from exc

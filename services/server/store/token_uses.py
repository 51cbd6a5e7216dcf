"""When each API token was last used: noted in memory where a token is checked, written by a sweep.

A token's check reads the database at most every few seconds (the token cache in api/deps.py, the Manager's own
cache for the tokens it checks here); writing `last_used` there would make every read a write, waiting for the
write lock behind a big job. So a check notes the time, and the Server's housekeeping writes what was noted,
every sweep interval, in one short transaction: the admin's token list shows when each token was last used to
within a minute or so, and which are stale enough to revoke.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.server.db.tables import ApiTokenRow


class TokenUses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, datetime] = {}

    def note(self, token_id: int, when: datetime | None = None) -> None:
        with self._lock:
            self._seen[token_id] = when or utcnow()

    def write(self, session: Session) -> None:
        """Store the times noted since the last write (a token revoked meanwhile is simply not there)."""
        with self._lock:
            seen, self._seen = self._seen, {}
        for token_id, when in seen.items():
            session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, or_(ApiTokenRow.last_used.is_(None), ApiTokenRow.last_used < when))
                .values(last_used=when)
            )

"""What the signed-in user may do, by the Server's rules, so the app offers only the actions that can succeed.

The rules mirror the Server's (services/server/api/deps.py `WranglerDep`, services/server/store/jobs.py
`check_may_manage`, and the Manager's sleep-schedule check): workers are managed by wranglers and admins; jobs by
wranglers and admins, and by an artist when the job is the artist's own. Until the app has learned who the user
is (the Server's `/me`), nothing is held back: the Server refuses what is not allowed, as it always does.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.qt import QObject, Signal
from services.protocol.states import Role

MANAGE_WORKERS = frozenset({Role.ADMIN, Role.WRANGLER})


class UserAccess(QObject):
    """The signed-in user's name and role; `changed` when another user signs in or the role changes."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name: str | None = None
        self.role: Role | None = None  # None: not known (yet); every action is offered

    def set_user(self, name: str | None, role: Role | None) -> None:
        if (name, role) != (self.name, self.role):
            self.name, self.role = name, role
            self.changed.emit()

    def workers_refusal(self) -> str:
        """Why this user may not manage workers; empty when they may (or the role is not known)."""
        if self.role is None or self.role in MANAGE_WORKERS:
            return ""
        return f"Needs the wrangler or admin role; {self.name} is {self.role}."

    def jobs_refusal(self, submitters: Iterable[str | None]) -> str:
        """Why this user may not manage jobs of these submitters (None: a job not known here); empty when they may."""
        if self.role != Role.ARTIST:
            return ""
        others = sorted({s or "someone else" for s in submitters if s != self.name})
        if not others:
            return ""
        return (
            f"Artists manage only their own jobs, and the selection holds jobs of {', '.join(others)}; "
            "those need the wrangler or admin role."
        )

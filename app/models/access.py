"""What the signed-in user may do, by the Server's rules, so the app offers only the actions that can succeed.

The rules mirror the Server's (services/server/api/deps.py `WranglerDep`, services/server/store/jobs.py
`check_may_manage`, and the Manager's sleep-schedule check): workers are managed by wranglers and admins; jobs by
wranglers and admins, and by an artist when the job is the artist's own. The farm's policy (the Server's
services/server/policy.py) adds two more, which the Server tells: the job types each user may submit (`/job-types`
`may_submit`), and the highest priority their role may give a job (`/me` `priority_cap`). Until the app has
learned who the user is, nothing is held back: the Server refuses what is not allowed, as it always does.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.qt import QObject, Signal
from services.protocol.jobs import PRIORITY_MAX, JobTypeInfo
from services.protocol.states import Role

MANAGE_WORKERS = frozenset({Role.ADMIN, Role.WRANGLER})


class UserAccess(QObject):
    """The signed-in user's name, role and priority cap; `changed` when another user signs in or these change."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name: str | None = None
        self.role: Role | None = None  # None: not known (yet); every action is offered
        self.priority_cap: int | None = None  # None: no cap (or not known, or an older Server)

    def set_user(self, name: str | None, role: Role | None, priority_cap: int | None = None) -> None:
        if (name, role, priority_cap) != (self.name, self.role, self.priority_cap):
            self.name, self.role, self.priority_cap = name, role, priority_cap
            self.changed.emit()

    def highest_priority(self, current: int | None = None) -> int:
        """The highest priority this user may give a job whose priority is `current` (None: a new job): the
        role's cap, or the job's own priority when a wrangler set it higher (it may be kept or lowered)."""
        if self.priority_cap is None:
            return PRIORITY_MAX
        return self.priority_cap if current is None else max(self.priority_cap, current)

    def priority_note(self) -> str:
        """What the cap is, for a priority field's tooltip and label; empty when there is none."""
        if self.priority_cap is None:
            return ""
        return (
            f"The farm's policy lets the {self.role or 'your'} role give a job priority {self.priority_cap} at "
            "most; a job above it may be lowered."
        )

    def submit_refusal(self, info: JobTypeInfo) -> str:
        """Why this user may not submit jobs of this type (the Server said so); empty when they may."""
        if info.may_submit:
            return ""
        roles = " or ".join(info.submit_roles or []) or "no role"
        you = f"; {self.name} is {self.role}" if self.role is not None else ""
        return f"The farm's policy reserves {info.name} jobs for the {roles} role{you}."

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

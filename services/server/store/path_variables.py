"""Which path variables a job's paths may name: the Server's own (`--variables`), `render_root` (every Manager has
it) and those the Managers say they have. A path naming another (`{renderroot}/sh010.blend`) was taken and then
failed on a worker three times, the brace left in the path; now it is a 422 naming the setting."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol import variable_names
from services.server.db.tables import ManagerRow
from services.server.jobtypes.base import JobType
from services.server.store.errors import Invalid

ALWAYS = frozenset({"render_root"})  # a Manager without --variables still has it (<data-dir>/render)
SHOWN_MAX = 20  # variables the refusal lists


def known(session: Session, server_variables: Iterable[str], manager_id: int | None) -> set[str] | None:
    """The names a job's paths may use (on `manager_id`'s workers, when the job is for one Manager); None when
    that cannot be known: no Manager yet, or one that has not said (an older one, or one with very many)."""
    query = select(ManagerRow.variables)
    if manager_id is not None:
        query = query.where(ManagerRow.id == manager_id)
    said = session.scalars(query).all()
    if not said or any(names is None for names in said):
        return None
    out = set(ALWAYS) | set(server_variables)
    for names in said:
        out.update(str(n) for n in names)
    return out


def check(
    session: Session,
    job_type: JobType,
    settings: dict[str, Any],
    server_variables: Iterable[str],
    manager_id: int | None,
) -> None:
    """Invalid naming `settings.<path setting>` when one of its `{name}`s is no variable of the farm."""
    used = [
        (name, ref)
        for name in job_type.path_settings()
        if isinstance(value := settings.get(name), str)
        for ref in variable_names.referenced(value)
        if ref not in job_type.path_placeholders and ref not in ALWAYS
    ]
    if not used:  # nearly every job: no query
        return
    names = known(session, server_variables, manager_id)
    if names is None:
        return
    for setting, ref in used:
        if ref in names:
            continue
        listed = sorted(names)
        shown = ", ".join(f"{{{n}}}" for n in listed[:SHOWN_MAX]) + (" …" if len(listed) > SHOWN_MAX else "")
        close = difflib.get_close_matches(ref, listed, n=1)
        hint = f"; did you mean {{{close[0]}}}?" if close else ""
        where = "the workers of this job's Manager know" if manager_id is not None else "the farm's workers know"
        raise Invalid(
            f"{{{ref}}} is not a path variable {where} (they know {shown}){hint}", field=f"settings.{setting}"
        )

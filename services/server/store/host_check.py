"""Says, when a job is submitted, what no worker on the farm has: the tags it asks for, and for an `openjd` job
the host requirements of its steps.

The Managers match each task to a worker (services/manager/host_match.py); this is the farm-wide view, from
the capabilities the Managers report for their workers, so a job nobody can run says so in its log and
activity at once instead of waiting silently. Its tasks still wait: a worker that fits may yet sign on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.commands import TASK_TYPE_PROGRAMS, TaskType
from services.protocol.host_requirements import OS_FAMILY, HostCapabilities, describe, parse, unmet
from services.protocol.tags import required_tags
from services.server.db.tables import JobRow, WorkerRow

TASK_TYPE = "openjd"


def _capabilities(w: WorkerRow) -> HostCapabilities:
    if w.capabilities:
        return HostCapabilities.model_validate(w.capabilities)
    return HostCapabilities(attributes={OS_FAMILY: [w.platform]})  # an older worker: its platform only


def unmet_steps(session: Session, job: JobRow) -> list[str]:
    """A sentence per step with host requirements that no (tag-eligible) worker of the farm meets."""
    template: Any = (job.settings or {}).get("template")
    if job.type != TASK_TYPE or not isinstance(template, dict):
        return []
    steps = [
        (s.get("name"), parse(s.get("hostRequirements"))) for s in template.get("steps") or [] if isinstance(s, dict)
    ]
    wanted = [(name, req) for name, req in steps if req is not None]
    if not wanted:
        return []
    q = select(WorkerRow)
    if job.manager_id is not None:
        q = q.where(WorkerRow.manager_id == job.manager_id)
    needed = required_tags(job.tags)
    workers = [
        _capabilities(w)
        for w in session.scalars(q)
        if TASK_TYPE in (w.task_types or []) and needed <= set(w.tags or [])
    ]
    if not workers:
        return []  # no openjd worker at all: nothing is special about these steps
    return [
        f"step {name!r}: no worker on the farm meets its host requirements ({describe(req)}); its tasks wait "
        "until one signs on"
        for name, req in wanted
        if all(unmet(req, caps) is not None for caps in workers)
    ]


def offers(session: Session, job: JobRow) -> list[tuple[set[str], set[str]]]:
    """The task types and tags of each worker that may run the job (of its Manager, if it names one): read once
    per submission for both checks below."""
    q = select(WorkerRow.task_types, WorkerRow.tags)
    if job.manager_id is not None:
        q = q.where(WorkerRow.manager_id == job.manager_id)
    return [(set(types or []), set(tags or [])) for types, tags in session.execute(q)]


def unmet_task_types(job: JobRow, workers: list[tuple[set[str], set[str]]]) -> str | None:
    """A sentence when the job has tasks of a type that none of `workers` offers: a worker without Blender on its
    PATH offers no `blender` tasks, and a newcomer's job waited "queued" for ever with nothing said (only the
    worker's details showed its task types)."""
    wanted = set(job.task_types or [])
    if not wanted or not workers:  # no worker at all: nothing is special about this job
        return None
    offered = set().union(*(types for types, _ in workers))
    missing = sorted(wanted - offered)
    if not missing:
        return None
    programs = [p for t in missing if t in _KNOWN_TYPES and (p := TASK_TYPE_PROGRAMS[TaskType(t)])]
    how = (
        f" (a worker offers them once it finds {programs[0]}: on its PATH, or given with --{programs[0]})"
        if programs
        else ""
    )
    return (
        f"no worker on the farm runs {', '.join(missing)} tasks (they offer {', '.join(sorted(offered)) or 'none'}); "
        f"its tasks wait until one does{how}"
    )


_KNOWN_TYPES = {t.value for t in TaskType}


def unmet_tags(job: JobRow, workers: list[tuple[set[str], set[str]]]) -> str | None:
    """A sentence when the job asks for tags that none of `workers` has."""
    needed = required_tags(job.tags)
    if not needed or not workers or any(needed <= tags for _, tags in workers):
        return None  # (no worker at all: nothing is special about this job)
    return (
        f"no worker on the farm has the tags {', '.join(sorted(needed))}; its tasks wait until one does (a worker's "
        "--tags, or a wrangler's edit of its tags)"
    )

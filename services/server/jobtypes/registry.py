"""Finds the job types registered under the `tablao.job_types` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from services.server.jobtypes.base import JobType

ENTRY_POINT_GROUP = "tablao.job_types"


@cache
def job_types() -> dict[str, JobType]:
    found: dict[str, JobType] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, JobType)):
            raise TypeError(f"entry point {ep.name!r} does not name a JobType subclass")
        found[ep.name] = cls()
    return dict(sorted(found.items()))


def registered_names() -> frozenset[str]:
    """The names registered as job types, plug-ins' included, without loading them: a broken plug-in's name is
    still one the farm's policy may name (services/server/policy.py)."""
    return frozenset(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def get_job_type(name: str) -> JobType | None:
    return job_types().get(name)

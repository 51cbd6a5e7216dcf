"""Wire models of a wrangler's work on workers: edited tags, utilisation history and the farm view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from services.protocol.common import ResponseModel, WireModel
from services.protocol.tags import TAG_PATTERN, TAGS_MAX, tag_problem

HISTORY_LIMIT_MAX = 10_000


def _checked_tag(tag: str) -> str:
    problem = tag_problem(tag)
    if problem:
        raise ValueError(problem)
    return tag


# the rule: services/protocol/tags.py; the pattern is the document's (the check's message says more than a 422's)
Tag = Annotated[str, AfterValidator(_checked_tag), Field(json_schema_extra={"pattern": f"^{TAG_PATTERN.pattern}$"})]


class WorkerTagsBody(WireModel):
    """The tags the farm uses for a worker from now on (they replace the ones it signed on with)."""

    tags: list[Tag] = Field(max_length=TAGS_MAX)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        return sorted(set(tags))


class UtilisationPoint(ResponseModel):
    time: datetime
    cpu_percent: float
    memory_percent: float
    gpu_percent: float | None = None  # None: the worker has no GPU it can measure (no nvidia-smi)


class UtilisationHistory(ResponseModel):
    """A worker's samples since `since`, oldest first; at most one per `sample_seconds`."""

    worker_id: str
    sample_seconds: float
    samples: list[UtilisationPoint]


class FarmMinute(ResponseModel):
    time: datetime  # the start of the minute
    tasks_completed: int

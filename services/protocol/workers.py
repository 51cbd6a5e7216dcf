"""Wire models of a wrangler's work on workers: edited tags, utilisation history and the farm view."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field, field_validator

from services.protocol.common import ResponseModel, WireModel

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$"
TAGS_MAX = 50  # as many as a worker may offer at sign-on
HISTORY_LIMIT_MAX = 10_000


class WorkerTagsBody(WireModel):
    """The tags the farm uses for a worker from now on (they replace the ones it signed on with)."""

    tags: list[str] = Field(max_length=TAGS_MAX)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.match(TAG_PATTERN, tag):
                raise ValueError(f"{tag[:80]!r} is not a tag: letters, digits and . _ : @ + -, at most 64")
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

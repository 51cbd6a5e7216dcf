"""Shared helpers for the job type tests: a context and a compile-from-dict shortcut."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.server.jobtypes.base import CompiledTask, JobContext, JobType

CTX = JobContext(job_id=1, name="job", submitter="ann", created=datetime(2026, 1, 1, tzinfo=UTC))


def compile_job(job_type: JobType, **settings: Any) -> list[CompiledTask]:
    return listed(job_type.compile(CTX, job_type.Settings.model_validate(settings)))


def listed(stream: Iterable[CompiledTask]) -> list[CompiledTask]:
    """A compilation as a list, each task's dependencies as a list (compilers may give a `range` or a tuple
    shared by many tasks), so tests compare them with plain lists."""
    tasks = list(stream)
    for t in tasks:
        t.depends_on = list(t.depends_on)
    return tasks


def params(task: CompiledTask, index: int = 0) -> dict[str, Any]:
    parameters: dict[str, Any] = task.commands[index]["parameters"]
    return parameters


def rejected(job_type: JobType, **settings: Any) -> tuple[tuple[str | int, ...], str]:
    """The (loc, msg) of the single validation error these settings cause."""
    with pytest.raises(ValidationError) as info:
        job_type.Settings.model_validate(settings)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"]

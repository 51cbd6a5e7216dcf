"""Shared helpers of the worker's unit tests: a run context that records what a runner reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from services.worker import task_policy
from services.worker.runners import Programs, RunContext, thread_spawn
from services.worker.task_policy import TaskPolicy


@dataclass
class Recorder:
    lines: list[str] = field(default_factory=list)
    progress: list[tuple[int | None, int | None]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def context(self, programs: Programs | None = None, grace: float = 0.5) -> RunContext:
        return RunContext(
            log=self.lines.append,
            progress=lambda done, total: self.progress.append((done, total)),
            output_file=self.outputs.append,
            programs=programs or Programs.find(),
            grace_seconds=grace,
        )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture(params=["thread", "hooks"])
def spawn_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each process test runs both ways a task's process can start: from its own thread with setpriv (Linux),
    and through asyncio with pre-exec hooks (elsewhere, or without setpriv, or when switching users)."""
    if request.param == "thread" and not thread_spawn.usable(TaskPolicy()):
        pytest.skip("needs Linux and util-linux's setpriv")
    if request.param == "hooks":
        monkeypatch.setattr(thread_spawn, "usable", lambda policy: False)
    return str(request.param)


@pytest.fixture(autouse=True)
def default_task_policy() -> Iterator[None]:
    """A sync test's task policy and variables stay in the main thread's context after it: each test starts
    from the defaults (a confining policy left behind kept the next test's processes from writing)."""
    yield
    task_policy.use_policy(TaskPolicy())
    task_policy.use_variables({})

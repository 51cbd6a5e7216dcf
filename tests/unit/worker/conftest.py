"""Shared helpers of the worker's unit tests: a run context that records what a runner reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from services.worker.runners import Programs, RunContext


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

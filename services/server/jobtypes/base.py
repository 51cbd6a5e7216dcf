"""What every job type provides, and the plain records a compilation yields.

A job type is a class registered under the `tablao.job_types` entry-point group. Compilation is pure:
`compile()` gets the validated settings and a little context and yields tasks, dependencies first; the Server
stores them as they come, in chunks (store/submission.py), so a job of a million tasks is never all in memory.
A compiler that yields as it goes (a generator) keeps the Server's memory flat; one that returns a list works
too, at the cost of holding it. Commands are built by calling the specs of `services/protocol/commands.py`
with their typed parameter records; they are plain dicts (`{"name": ..., "parameters": {...}}`) rather than
pydantic models so compiling 100,000 tasks stays cheap. `docs/commands.md`, generated from that module, lists them all.
"""

from __future__ import annotations

import gc
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError


class _FormSchema(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        # Pydantic leaves the title off fields whose type is an enum or a model; a form needs it.
        return True


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace each `{"$ref": "#/$defs/X", ...}` by X's schema, the field's own keys winning."""
    if isinstance(node, list):
        return [_inline_refs(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {**target, **{k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}}
    return {k: _inline_refs(v, defs) for k, v in node.items()}


class JobTypeSettings(BaseModel):
    """Base of every job type's settings: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def from_submission(cls, raw: dict[str, Any]) -> JobTypeSettings:
        """The settings as a job's submission gave them, read as JSON and strictly, as every wire model is: `"2"`
        is no chunk size, `true` no frame, `1` no switch (they were taken as 2, 1 and true); enums and times from
        their text. ValidationError as for any settings."""
        raw = _whole_numbers(raw)
        try:
            text = orjson.dumps(raw)
        except TypeError:  # an integer past 64 bits, which orjson does not write: the settings refuse it by name
            text = json.dumps(raw).encode()
        settings = cls.model_validate_json(text, strict=True)
        if (at := _outsized_int(settings.model_dump(mode="json"))) is not None:
            # one a field took as it is (an openjd job's parameter values): stored, it made every list of jobs
            # holding it a 500, for every user (an API fuzzing audit)
            raise ValidationError.from_exception_data(
                cls.__name__,
                [{"type": PydanticCustomError("int_too_big", OUTSIZED_INT), "loc": at, "input": "(an integer)"}],
            )
        return settings


OUTSIZED_INT = f"integers are at most {2**63 - 1} either side of zero: no larger one is stored"


def _outsized_int(value: Any) -> tuple[str | int, ...] | None:
    """Where the first integer past 64 bits is in settings as stored (JSON); None if there is none."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) < item < 2**63:
            return at
        inside: Any = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        stack.extend(((*at, key), child) for key, child in reversed(list(inside)))  # the first in order is named
    return None


_WHOLE_MAX = 2.0**53  # floats up to here hold whole numbers exactly


def _whole_numbers(value: Any) -> Any:
    """Floats with nothing after the point as ints, as the wire models take them (`WHOLE`): JSON Schema counts 2.0
    as an integer, and a client's float arithmetic may send one for `chunk_size`. (Bodies nest at most 32 deep.)"""
    if type(value) is float and value.is_integer() and abs(value) <= _WHOLE_MAX:
        return int(value)  # not 1e308: a 309-digit int that no JSON writer here takes (GET /jobs was a 500)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a compiler may know about the job besides its settings."""

    job_id: int
    name: str
    submitter: str
    created: datetime


@dataclass(slots=True)
class CompiledTask:
    name: str
    type: str  # a TaskType's value (a plain str), or the task type an `exec` job names
    commands: list[dict[str, Any]]
    # indexes, in the order compile() yields tasks, of the tasks this one waits for; they must point at earlier
    # tasks. A `range` says "all of these" in a few bytes (a preview after a million frames), and one sequence
    # may be shared by many tasks: the Server only reads it.
    depends_on: Sequence[int] = field(default_factory=list)
    steps_total: int = 1


MAX_COMMAND_BYTES = 512 * 1024 * 1024
"""What the commands of one job's tasks may hold in all, as stored (JSON): a job over it is refused before any
task is written. Room for the farm's default limit of a million tasks at ~500 bytes each (a render whose blend
file and output pattern are 200 characters each); a string setting copied into every task of a big job is not.
The openjd job type keeps its own, tighter bound (openjd_job.MAX_STORED_BYTES: its tasks are at most 100,000)."""


@dataclass(frozen=True, slots=True)
class SizeEstimate:
    """What a compilation will yield, told from the settings alone before any task is built."""

    tasks: int  # exactly how many tasks compile() yields
    command_bytes: int  # about how many bytes their commands take as stored (JSON), from a task or two × the count


def command_bytes(task: CompiledTask) -> int:
    """The bytes a task's commands take as stored (the JSON the Server writes)."""
    return len(orjson.dumps(task.commands))


def measured(tasks: Iterable[CompiledTask]) -> SizeEstimate:
    """The exact size of a small compilation (a few hundred tasks at most), built to be measured."""
    n = total = 0
    for task in tasks:
        n += 1
        total += command_bytes(task)
    return SizeEstimate(n, total)


class CompileError(ValueError):
    """Settings that pass the schema but cannot be compiled; `field` names the setting at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Capability(StrEnum):
    """How much a job type lets its submitter do on the workers (docs/security.md)."""

    COMMAND = "command"  # runs whatever program the submitter names: as powerful as a shell there
    PROGRAM = "program"  # runs known programs with settings the job type checks


class JobType(ABC):
    name: ClassVar[str]
    # unknown job types are trusted least: a plug-in says `program` when its commands are fixed
    capability: ClassVar[Capability] = Capability.COMMAND
    label: ClassVar[str]
    description: ClassVar[str]
    Settings: ClassVar[type[JobTypeSettings]]
    # `{name}`s its path settings may hold that it fills in itself (exec's `{frame}`), not path variables
    path_placeholders: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def path_settings(cls) -> list[str]:
        """Its settings that are file paths (`format: path` in the schema, fields.path_field)."""
        return [
            name
            for name, f in cls.Settings.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("format") == "path"
        ]

    @classmethod
    def settings_schema(cls) -> dict[str, Any]:
        """The settings' JSON schema for forms: every field titled, no `$ref`s left to resolve."""
        schema = cls.Settings.model_json_schema(schema_generator=_FormSchema)
        inlined: dict[str, Any] = _inline_refs(schema, schema.pop("$defs", {}))
        return inlined

    def estimate(self, settings: Any) -> SizeEstimate | None:
        """How many tasks `compile` yields for these validated settings and about how big their commands are,
        without building them all, so the Server refuses a job over its limits before storing any of it; None
        (the default, for plug-ins): unknown, and the limits are checked as the tasks come."""
        return None

    @abstractmethod
    def compile(self, ctx: JobContext, settings: Any) -> Iterable[CompiledTask]:
        """Turn validated settings (an instance of `Settings`) into tasks, dependencies first (best yielded one
        by one: the Server stores each chunk while the next is compiled)."""


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects.

    Compiling 100,000 tasks allocates ~500,000 containers; the collector's repeated passes over them cost
    two thirds of the time and would find nothing, since compiled tasks hold no reference cycles. Whoever
    consumes a compilation pauses it (store/submission.py, store/jobs.py), not the compilers: a generator
    paused there would keep the collector off for as long as it lay unfinished.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""The `openjd` job type: an Open Job Description job template (2023-09) and its parameter values.

Validation is openjd-model's own (no hand-written validator; `openjd_gaps` checks what it lets through): the
template is decoded, parameter values are checked and defaults applied, then each step's parameter space becomes
one task per combination (or per chunk, with the TASK_CHUNKING extension) and step dependencies become task
dependencies. Sizes are checked before anything is expanded: a parameter space of billions of tasks is refused
from its length alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
from openjd.model import (
    DecodeValidationError,
    Job,
    JobParameterValues,
    JobTemplate,
    StepParameterSpaceIterator,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)
from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from services.protocol.commands import ECHO, OPENJD_TASK, OpenjdTaskParams, TaskType
from services.protocol.openjd_template import (
    MAX_TEMPLATE_BYTES,
    SPECIFICATION,
    SUPPORTED_EXTENSIONS,
    TemplateTextError,
    parse_template_text,
    template_size,
)
from services.server.jobtypes.base import CompiledTask, CompileError, JobContext, JobType, JobTypeSettings
from services.server.jobtypes.fields import invalid
from services.server.jobtypes.openjd_gaps import check_numbers, plain_numbers, space_size

T = TypeVar("T")
MAX_TASKS = 100_000
# CHUNK[INT] ranges are expanded to a list by openjd-model before chunking; bound them first
MAX_CHUNKED_VALUES = 100_000
# what a job's task commands may hold in all (each task carries its step's part of the template)
MAX_STORED_BYTES = 256 * 1024 * 1024
# a step depending on another with more than this many task pairs waits on one barrier task instead
MAX_DIRECT_EDGES = 10_000
TASK_TYPE = TaskType.OPENJD.value
COMMAND = OPENJD_TASK.name
TASK_NAME_MAX = 200
# the largest integer a template may hold, either side of zero: each task's template is stored through orjson,
# which writes 64-bit integers only (a larger one was a 500 after the job had passed validation)
MAX_INT = 2**63 - 1


def model_message(exc: Exception) -> str:
    """openjd-model's multi-line message on one line, its wording kept."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(ln if ln.endswith(":") else ln + ";" for ln in lines).rstrip(";")


def outsized_int(template: dict[str, Any]) -> str | None:
    """Where the first integer past ±MAX_INT is in a parsed template (`parameterDefinitions[0].default`); None if
    there is none."""
    stack: list[tuple[str, Any]] = [("", template)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            return at
        items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        # reversed onto the stack, so the first integer in document order is the one named
        for key, item in reversed(list(items)):
            stack.append((f"{at}[{key}]" if isinstance(key, int) else f"{at}.{key}" if at else str(key), item))
    return None


def through_model(call: Callable[[], T], refusal: Callable[[str], Exception]) -> T:
    """`call()` of openjd-model; its refusal of the template, in one line, raised as `refusal(message)`.

    Besides its own errors, openjd-model fails on some templates while it checks or words its refusal (an
    IndexError for a cycle of steps, a RecursionError for a deeply bracketed combination): those are the
    template's fault too, a 422 and not a 500.
    """
    try:
        return call()
    except (DecodeValidationError, NotImplementedError, ValueError) as exc:
        raise refusal(model_message(exc)) from exc
    except RecursionError as exc:
        raise refusal("the template's expressions are nested too deeply") from exc
    except Exception as exc:
        raise refusal(model_failure(exc)) from exc


def model_failure(exc: Exception) -> str:
    """What openjd-model was refusing when it failed: the validation error it was wording, if any."""
    context = exc.__context__
    if isinstance(context, ValidationError):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in context.errors(include_url=False))
    return f"openjd-model could not read the template ({type(exc).__name__}: {exc})"


def decode(template: dict[str, Any]) -> JobTemplate:
    """The template as openjd-model reads it; a refusal is a validation error of the `template` setting."""
    try:
        text = orjson.dumps(template)
    except TypeError:  # an integer past 64 bits, refused by its own check: decoded without the cache
        return through_model(lambda: _decode(template), invalid)
    return through_model(lambda: _decoded(text), invalid)


# A submission decodes its template several times (each setting's check, then the compiler's), up to 0.3 s a time
# for a big one: the last few are kept, by their JSON text. openjd-model builds a job from a template without
# changing it, so one decoded template serves them all.
@lru_cache(maxsize=4)
def _decoded(text: bytes) -> JobTemplate:
    return _decode(orjson.loads(text))


def _decode(template: dict[str, Any]) -> JobTemplate:
    return decode_job_template(template=template, supported_extensions=list(SUPPORTED_EXTENSIONS))


def parameter_values(template: JobTemplate, given: dict[str, str]) -> JobParameterValues:
    """Values checked against the definitions, defaults added; ValueError with the model's reason."""
    given = plain_numbers(template, given)
    # first: openjd-model fails on NaN against a bound (decimal.InvalidOperation), a reason that names nothing
    check_numbers(template, given)
    # a Server cannot see the submitter's disk: PATH values are kept as given (they may use farm variables)
    values = preprocess_job_parameters(
        job_template=template,
        job_parameter_values=given,
        job_template_dir=Path(),
        current_working_dir=Path(),
        allow_job_template_dir_walk_up=True,
    )
    # the defaults: the model checks them against the bounds, but a FLOAT one may be past a float's range
    check_numbers(template, {name: v.value for name, v in values.items() if name not in given}, "Default value")
    return values


def instantiate(template: dict[str, Any], given: dict[str, str]) -> tuple[Job, JobParameterValues]:
    decoded = decode(template)
    values = parameter_values(decoded, given)
    job = through_model(lambda: create_job(job_template=decoded, job_parameter_values=values), compile_error)
    return job, values


def compile_error(message: str) -> CompileError:
    return CompileError("template", message)


class OpenJDSettings(JobTypeSettings):
    model_config = ConfigDict(title="Open Job Description")

    template: dict[str, Any] = Field(
        title="Job template",
        description=f"An Open Job Description job template ({SPECIFICATION}), as an object or as its YAML or "
        f"JSON text (at most {MAX_TEMPLATE_BYTES // 1024} KiB).",
        examples=[
            {
                "specificationVersion": SPECIFICATION,
                "name": "hello",
                "steps": [{"name": "Say", "script": {"actions": {"onRun": {"command": "echo", "args": ["hello"]}}}}],
            }
        ],
    )
    parameters: dict[str, str | int | float] = Field(
        default_factory=dict,
        max_length=500,
        title="Parameter values",
        description="Values of the template's job parameters by name; parameters left out take their default.",
    )

    @field_validator("template", mode="before")
    @classmethod
    def _parse_and_decode(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = parse_template_text(value)
            except TemplateTextError as exc:
                raise invalid(str(exc)) from exc
        if isinstance(value, dict):
            if (size := template_size(value)) > MAX_TEMPLATE_BYTES:
                raise invalid(f"the template is {size} bytes as JSON; at most {MAX_TEMPLATE_BYTES} are accepted")
            if (at := outsized_int(value)) is not None:
                raise invalid(f"{at}: integers in a template are at most {MAX_INT} either side of zero")
            decode(value)
        return value

    @field_validator("parameters")
    @classmethod
    def _values_fit(cls, value: dict[str, str | int | float], info: ValidationInfo) -> dict[str, str | int | float]:
        template = info.data.get("template")
        if template is None:
            return value  # the template's own error is reported
        decoded = decode(template)
        through_model(lambda: parameter_values(decoded, as_strings(value)), invalid)
        return value


def as_strings(values: dict[str, str | int | float]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else repr(v) for k, v in values.items()}


def step_order(job: Job) -> list[int]:
    """Indexes of the job's steps with every step after the steps it depends on.

    Depth first without recursing: a chain of a thousand dependent steps, listed last step first, was a
    RecursionError. The model refuses a cycle as it decodes the template; one met here is refused too.
    """
    index = {step.name: i for i, step in enumerate(job.steps)}

    def dependencies(i: int) -> Iterator[int]:
        return (index[dep.dependsOn] for dep in job.steps[i].dependencies or [])

    done: list[int] = []
    placed: dict[int, bool] = {}  # False while the steps it depends on are being placed
    for first in range(len(job.steps)):
        if first in placed:
            continue
        placed[first] = False
        stack = [(first, dependencies(first))]
        while stack:
            i, pending = stack[-1]
            for j in pending:
                if j not in placed:
                    placed[j] = False
                    stack.append((j, dependencies(j)))
                    break
                if not placed[j]:
                    raise CompileError("template", f"step dependencies form a cycle through {job.steps[j].name!r}")
            else:
                stack.pop()
                placed[i] = True
                done.append(i)
    return done


def _check_range(step: str, name: str, definition: Any) -> None:
    """CompileError for a task parameter value a job parameter could not be (an API fuzzing audit): a FLOAT that
    is not finite (`nan`, `1e999` took no check as range values), an INT past 64 bits (`-9223372036854775813-...`)."""
    kind = str(getattr(definition.type, "value", definition.type))
    given = definition.range
    if kind == "FLOAT" and isinstance(given, list):
        for value in given:
            try:
                finite = math.isfinite(float(value))
            except (ValueError, OverflowError):
                continue  # not a number: the model's own refusal
            if not finite:
                raise CompileError("template", f"step {step!r}: FLOAT parameter {name!r}: {str(value)[:40]} is not a "
                                   "finite number within a float's range (1.8e308)")  # fmt: skip
    elif kind in ("INT", "CHUNK[INT]"):
        ends = [r for part in getattr(given, "ranges", []) for r in (part.start, part.end)]
        values = given if isinstance(given, list) else ends
        for value in values:
            try:
                outside = abs(int(value)) > MAX_INT
            except (ValueError, TypeError):
                continue  # not a whole number: the model's own refusal
            if outside:
                raise CompileError("template", f"step {step!r}: INT parameter {name!r}: {value} is past 64 bits: "
                                   f"integers are at most {MAX_INT} either side of zero")  # fmt: skip


def _space(step: Any) -> StepParameterSpaceIterator | None:
    if step.parameterSpace is None:
        return None
    chunk_size = None
    for name, definition in step.parameterSpace.taskParameterDefinitions.items():
        _check_range(step.name, name, definition)
        if str(getattr(definition.type, "value", definition.type)) != "CHUNK[INT]":
            continue
        if (n := len(definition.range)) > MAX_CHUNKED_VALUES:
            raise CompileError(
                "template",
                f"step {step.name!r}: the CHUNK[INT] parameter {name!r} has {n:,} values; at most "
                f"{MAX_CHUNKED_VALUES:,} are accepted",
            )
        # adaptive chunking (`targetRuntimeSeconds`) is not done: its chunks are `defaultTaskCount` long
        chunk_size = int(definition.chunks.defaultTaskCount)
    return through_model(
        lambda: StepParameterSpaceIterator(space=step.parameterSpace, chunks_task_count_override=chunk_size),
        lambda message: compile_error(f"step {step.name!r}: {message}"),
    )


def step_templates(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """By step name, the part of the template a task of that step needs to run: its step (without dependencies),
    the job's parameter definitions and environments. All at once: looking each step up in the list took time
    growing with the square of the steps (5.7 s for 8,000)."""
    rest = {k: v for k, v in raw.items() if k != "steps"}
    return {
        step["name"]: {**rest, "steps": [{k: v for k, v in step.items() if k != "dependencies"}]}
        for step in raw["steps"]
    }


def task_name(step: str, params: dict[str, Any]) -> str:
    text = " ".join(f"{k}={p.value}" for k, p in params.items())
    name = f"{step} {text}".strip()
    return name if len(name) <= TASK_NAME_MAX else name[: TASK_NAME_MAX - 1] + "…"


class OpenJDJob(JobType):
    name = "openjd"
    label = "Open Job Description"
    description = "Run an Open Job Description job template: one task per parameter combination of each step."
    Settings = OpenJDSettings

    def compile(self, ctx: JobContext, settings: Any) -> Iterator[CompiledTask]:
        s = OpenJDSettings.model_validate(settings)
        job, values = instantiate(s.template, as_strings(s.parameters))
        job_parameters = {name: v.value for name, v in values.items()}
        order = step_order(job)
        spaces = {i: _space(job.steps[i]) for i in order}
        counts = {i: (space_size(sp) if sp is not None else 1) for i, sp in spaces.items()}
        if (total := sum(counts.values())) > MAX_TASKS:
            raise CompileError("template", f"the template makes {total:,} tasks; a job may have at most {MAX_TASKS:,}")
        by_name = step_templates(s.template)
        payloads = {i: by_name[job.steps[i].name] for i in order}
        # every task carries its step's template and all job parameter values: count both
        per_task_values = template_size({"job_parameters": job_parameters})
        stored = sum((template_size(payloads[i]) + per_task_values) * counts[i] for i in order)
        if stored > MAX_STORED_BYTES:
            raise CompileError(
                "template",
                f"the tasks would store {stored // (1024 * 1024)} MiB of template and parameter values; make "
                "them or the parameter space smaller",
            )
        n = 0  # tasks yielded so far: the index of the next one
        by_step: dict[str, range] = {}  # each step's tasks come one after another
        barriers: dict[str, int] = {}
        for i in order:
            step = job.steps[i]
            depends: list[int] = []
            for dep in step.dependencies or []:
                waited, barrier = self._wait_for(n, by_step, barriers, dep.dependsOn, counts[i])
                if barrier is not None:
                    yield barrier
                    n += 1
                depends.extend(waited)
            shared = tuple(depends)  # one sequence for all the step's tasks: the Server only reads it
            space = spaces[i]
            combos: Iterable[Mapping[str, Any]] = space if space is not None else [{}]
            first = n
            for params in combos:
                parameters: OpenjdTaskParams = {
                    "template": payloads[i],
                    "job_parameters": job_parameters,
                    "step": step.name,
                    "task_parameters": {k: {"type": p.type.value, "value": p.value} for k, p in params.items()},
                }
                yield CompiledTask(
                    name=task_name(step.name, dict(params)),
                    type=TASK_TYPE,
                    commands=[OPENJD_TASK(parameters)],
                    depends_on=shared,
                )
                n += 1
            by_step[step.name] = range(first, n)

    @staticmethod
    def _wait_for(
        n: int, by_step: dict[str, range], barriers: dict[str, int], step: str, waiting: int
    ) -> tuple[Sequence[int], CompiledTask | None]:
        """The tasks a task of a dependent step waits on: the step's tasks, or one barrier task after them (with
        the barrier to yield first, as task `n`, when it is new)."""
        before = by_step[step]
        if len(before) * waiting <= MAX_DIRECT_EDGES:
            return before, None
        if step in barriers:
            return [barriers[step]], None
        barriers[step] = n
        barrier = CompiledTask(
            name=f"{step}: all tasks done"[:TASK_NAME_MAX],
            type=TaskType.MISC.value,
            commands=[ECHO({"message": f"step {step!r} is done"})],
            depends_on=before,
        )
        return [n], barrier

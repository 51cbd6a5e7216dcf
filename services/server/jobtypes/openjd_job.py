"""The `openjd` job type: an Open Job Description job template (2023-09) and its parameter values.

Validation is openjd-model's own (no hand-written validator): the template is decoded, parameter values are
checked and defaults applied, then each step's parameter space becomes one task per combination (or per
chunk, with the TASK_CHUNKING extension) and step dependencies become task dependencies. Sizes are checked
before anything is expanded: a parameter space of billions of tasks is refused from its length alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

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
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

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


def decode(template: dict[str, Any]) -> JobTemplate:
    try:
        return decode_job_template(template=template, supported_extensions=list(SUPPORTED_EXTENSIONS))
    except (DecodeValidationError, NotImplementedError, ValueError) as exc:
        raise invalid(model_message(exc)) from exc


def parameter_values(template: JobTemplate, given: dict[str, str]) -> JobParameterValues:
    """Values checked against the definitions, defaults added; ValueError with the model's reason."""
    # a Server cannot see the submitter's disk: PATH values are kept as given (they may use farm variables)
    return preprocess_job_parameters(
        job_template=template,
        job_parameter_values=given,
        job_template_dir=Path(),
        current_working_dir=Path(),
        allow_job_template_dir_walk_up=True,
    )


def instantiate(template: dict[str, Any], given: dict[str, str]) -> tuple[Job, JobParameterValues]:
    decoded = decode(template)
    values = parameter_values(decoded, given)
    try:
        return create_job(job_template=decoded, job_parameter_values=values), values
    except (DecodeValidationError, ValueError) as exc:
        raise CompileError("template", model_message(exc)) from exc


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
        try:
            parameter_values(decode(template), as_strings(value))
        except (ValueError, NotImplementedError) as exc:
            raise invalid(model_message(exc)) from exc
        return value


def as_strings(values: dict[str, str | int | float]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else repr(v) for k, v in values.items()}


def step_order(job: Job) -> list[int]:
    """Indexes of the job's steps with every step after the steps it depends on (the model rejects cycles)."""
    index = {step.name: i for i, step in enumerate(job.steps)}
    done: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for dep in job.steps[i].dependencies or []:
            visit(index[dep.dependsOn])
        done.append(i)

    for i in range(len(job.steps)):
        visit(i)
    return done


def _space(step: Any) -> StepParameterSpaceIterator | None:
    if step.parameterSpace is None:
        return None
    for name, definition in step.parameterSpace.taskParameterDefinitions.items():
        chunked = str(getattr(definition.type, "value", definition.type)) == "CHUNK[INT]"
        if chunked and (n := len(definition.range)) > MAX_CHUNKED_VALUES:
            raise CompileError(
                "template",
                f"step {step.name!r}: the CHUNK[INT] parameter {name!r} has {n:,} values; at most "
                f"{MAX_CHUNKED_VALUES:,} are accepted",
            )
    try:
        return StepParameterSpaceIterator(space=step.parameterSpace)
    except ValueError as exc:
        raise CompileError("template", f"step {step.name!r}: {model_message(exc)}") from exc


def step_template(raw: dict[str, Any], step_name: str) -> dict[str, Any]:
    """The part of the template a task of one step needs to run: its step (without dependencies), the job's
    parameter definitions and environments."""
    step = next(s for s in raw["steps"] if s.get("name") == step_name)
    out = {k: v for k, v in raw.items() if k != "steps"}
    out["steps"] = [{k: v for k, v in step.items() if k != "dependencies"}]
    return out


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
        counts = {i: (len(sp) if sp is not None else 1) for i, sp in spaces.items()}
        if (total := sum(counts.values())) > MAX_TASKS:
            raise CompileError("template", f"the template makes {total:,} tasks; a job may have at most {MAX_TASKS:,}")
        payloads = {i: step_template(s.template, job.steps[i].name) for i in order}
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

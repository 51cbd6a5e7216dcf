"""The openjd job type: openjd-model validates, parameter spaces become tasks, sizes are refused cheaply."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from pydantic import ValidationError

from services.protocol.openjd_template import MAX_TEMPLATE_BYTES
from services.server.jobtypes.base import CompileError, JobContext
from services.server.jobtypes.openjd_job import MAX_TASKS, OpenJDJob, OpenJDSettings, step_order
from tests.unit.server.jobtypes.helpers import listed

TEMPLATES = Path(__file__).parents[3] / "support" / "openjd"
CTX = JobContext(1, "j", "ana", datetime.now(UTC))


def compile_(settings: dict[str, Any]) -> list[Any]:
    return listed(OpenJDJob().compile(CTX, OpenJDSettings.model_validate(settings)))


def one_step(space: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "t",
        **extra,
        "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": space},
                   "script": {"actions": {"onRun": {"command": "echo"}}}}],
    }  # fmt: skip


def errors(settings: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        OpenJDSettings.model_validate(settings)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_yaml_template_with_defaults_compiles_to_tasks_with_dependencies() -> None:
    text = (TEMPLATES / "several_steps.yaml").read_text()
    tasks = compile_({"template": text, "parameters": {"OutDir": "/tmp/o", "Frames": "1-2"}})
    render, collect = tasks[:4], tasks[4]
    assert [t.name for t in render] == ["Render Frame=1 Layer=fg", "Render Frame=1 Layer=bg",
                                        "Render Frame=2 Layer=fg", "Render Frame=2 Layer=bg"]  # fmt: skip
    assert collect.name == "Collect" and collect.depends_on == [0, 1, 2, 3]
    params = render[3].commands[0]["parameters"]
    assert render[3].commands[0]["name"] == "openjd-task" and render[3].type == "openjd"
    assert params["task_parameters"] == {
        "Frame": {"type": "INT", "value": "2"},
        "Layer": {"type": "STRING", "value": "bg"},
    }
    assert params["job_parameters"] == {"Shot": "sh010", "Frames": "1-2", "OutDir": "/tmp/o"}
    # a task carries its own step only, without the dependency the Server already turned into task order
    assert [s["name"] for s in params["template"]["steps"]] == ["Render"]
    assert "dependencies" not in collect.commands[0]["parameters"]["template"]["steps"][0]


def test_steps_are_ordered_by_dependency_not_by_position() -> None:
    t = one_step([{"name": "X", "type": "INT", "range": [1, 2]}])
    t["steps"].insert(0, {"name": "Late", "dependencies": [{"dependsOn": "S"}],
                          "script": {"actions": {"onRun": {"command": "echo"}}}})  # fmt: skip
    tasks = compile_({"template": t})
    assert [t.name for t in tasks] == ["S X=1", "S X=2", "Late"] and tasks[2].depends_on == [0, 1]


def test_chunked_parameter_makes_one_task_per_chunk() -> None:
    space = [{"name": "F", "type": "CHUNK[INT]", "range": "1-10",
              "chunks": {"defaultTaskCount": 4, "rangeConstraint": "CONTIGUOUS"}}]  # fmt: skip
    tasks = compile_({"template": one_step(space, extensions=["TASK_CHUNKING"])})
    # chunks of at most defaultTaskCount values, evened out by openjd-model
    assert [t.commands[0]["parameters"]["task_parameters"]["F"]["value"] for t in tasks] == ["1-4", "5-7", "8-10"]


def test_invalid_templates_and_values_carry_the_models_reason() -> None:
    e = errors({"template": {"specificationVersion": "jobtemplate-2023-09", "name": "x", "steps": [{"name": "A"}]}})
    assert "steps[0]" in e["template"] and "script" in e["template"], e
    e = errors({"template": {"specificationVersion": "jobtemplate-1999-01", "name": "x", "steps": []}})
    assert "template" in e
    e = errors({"template": "a: [unclosed"})
    assert e["template"].startswith("not valid YAML"), e
    assert "<unicode string>" not in e["template"] and "line " in e["template"], e  # where, not the parser's name
    e = errors({"template": "base: &b [1]\nother: *b\n"})
    assert "aliases are not accepted" in e["template"]
    text = (TEMPLATES / "several_steps.yaml").read_text()
    e = errors({"template": text, "parameters": {"Nope": "1"}})  # OutDir missing and Nope unknown
    assert "OutDir" in e["parameters"] and "Nope" in e["parameters"], e


def with_parameter(**definition: Any) -> dict[str, Any]:
    return one_step([{"name": "X", "type": "INT", "range": [1]}], parameterDefinitions=[definition])


@pytest.mark.parametrize(
    ("definition", "value", "reason"),
    [
        # openjd-model skips a bound of 0 (`if self.minValue and ...`): these ran
        ({"name": "N", "type": "INT", "minValue": 0}, "-5", "Value (-5) for parameter N must be at least 0."),
        ({"name": "N", "type": "INT", "minValue": 0}, -1, "Value (-1) for parameter N must be at least 0."),
        ({"name": "N", "type": "INT", "maxValue": 0}, "5", "Value (5) for parameter N must be at most 0."),
        ({"name": "F", "type": "FLOAT", "minValue": 0}, "-0.5", "Value (-0.5) for parameter F must be at least 0."),
        ({"name": "F", "type": "FLOAT", "maxValue": 0.0}, 0.25, "Value (0.25) for parameter F must be at most 0.0."),
        # NaN and infinity, which a template may not hold, and a number a float cannot hold, which is infinity
        ({"name": "F", "type": "FLOAT", "minValue": 0}, "-inf", "Value (-inf) for parameter F must be a finite"),
        ({"name": "F", "type": "FLOAT"}, "nan", "Value (nan) for parameter F must be a finite number"),
        ({"name": "F", "type": "FLOAT"}, "inf", "Value (inf) for parameter F must be a finite number"),
        ({"name": "F", "type": "FLOAT"}, "1e400", "Value (1e400) for parameter F must be a finite number, within a "
                                                  "float's range (1.8e308)."),
        ({"name": "F", "type": "FLOAT"}, "sNaN", "Value (sNaN) for parameter F must be a finite number"),
        # against a bound, openjd-model failed on NaN itself (decimal.InvalidOperation), naming nothing
        ({"name": "F", "type": "FLOAT", "minValue": 1}, "NaN", "Value (NaN) for parameter F must be a finite number"),
        # a default the model checks against its bounds, but not against a float's range
        ({"name": "F", "type": "FLOAT", "default": "1e400"}, None, "Default value (1E+400) for parameter F must be "
                                                                   "a finite number"),
    ],
)  # fmt: skip
def test_numbers_outside_their_bounds_or_not_finite_are_refused_naming_the_parameter(
    definition: dict[str, Any], value: Any, reason: str
) -> None:
    values = {} if value is None else {definition["name"]: value}
    e = errors({"template": with_parameter(**definition), "parameters": values})
    assert list(e) == ["parameters"] and e["parameters"].startswith(reason), e


@pytest.mark.parametrize(
    ("definition", "value"),
    [
        ({"name": "N", "type": "INT", "minValue": 0, "maxValue": 0}, "0"),
        ({"name": "N", "type": "INT", "minValue": -3}, -3),
        ({"name": "F", "type": "FLOAT", "minValue": 0, "maxValue": 1}, "0.0"),
        ({"name": "F", "type": "FLOAT"}, "1e-400"),  # rounds to zero: finite
        ({"name": "F", "type": "FLOAT"}, "-1.7e308"),
        ({"name": "S", "type": "STRING", "minLength": 0}, ""),  # a length is never below 0: nothing skipped
    ],
)
def test_numbers_on_their_bounds_are_kept(definition: dict[str, Any], value: Any) -> None:
    tasks = compile_({"template": with_parameter(**definition), "parameters": {definition["name"]: value}})
    assert tasks[0].commands[0]["parameters"]["job_parameters"] == {definition["name"]: str(value)}


@pytest.mark.parametrize(
    ("kind", "given", "passed_on"),
    [("INT", " 7 ", "7"), ("INT", "+3", "3"), ("INT", "007", "7"), ("INT", "-0", "0"), ("FLOAT", " 1.5 ", "1.5")],
)
def test_a_number_parameter_reaches_the_command_as_its_digits(kind: str, given: str, passed_on: str) -> None:
    tasks = compile_({"template": with_parameter(name="N", type=kind), "parameters": {"N": given}})
    assert tasks[0].commands[0]["parameters"]["job_parameters"] == {"N": passed_on}


@pytest.mark.parametrize(("kind", "given"), [("INT", "1_000"), ("INT", "\u0663"), ("INT", "\uff17"),
                                             ("FLOAT", "1_000.5"), ("FLOAT", "\u0661.5"), ("INT", "0x10")])  # fmt: skip
def test_a_number_parameter_in_other_characters_is_refused_naming_it(kind: str, given: str) -> None:
    """Python's int() took `1_000` and Arabic-Indic digits, which went on to the task's command line as typed."""
    e = errors({"template": with_parameter(name="N", type=kind), "parameters": {"N": given}})
    assert list(e) == ["parameters"] and "parameter N must be a number written in ASCII digits" in e["parameters"], e


@pytest.mark.timeout(10)
def test_billions_of_tasks_are_refused_without_expanding() -> None:
    space = [{"name": "X", "type": "INT", "range": "1-1000000000"}, {"name": "Y", "type": "INT", "range": "1-1000"}]
    start = time.monotonic()
    with pytest.raises(CompileError, match=f"at most {MAX_TASKS:,}") as info:
        compile_({"template": one_step(space)})
    assert "1,000,000,000,000 tasks" in info.value.message
    chunked = [{"name": "F", "type": "CHUNK[INT]", "range": "1-1000000000",
                "chunks": {"defaultTaskCount": 10, "rangeConstraint": "CONTIGUOUS"}}]  # fmt: skip
    with pytest.raises(CompileError, match="1,000,000,000 values"):
        compile_({"template": one_step(chunked, extensions=["TASK_CHUNKING"])})
    assert time.monotonic() - start < 2


_FOUR_BILLION = {"type": "INT", "range": "1-4000000000"}


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("space", "combination", "tasks"),
    [
        ([{"name": "X", **_FOUR_BILLION}, {"name": "Y", **_FOUR_BILLION}], None, f"{16 * 10**18:,}"),
        ([{"name": f"P{i}", "type": "INT", "range": "1-1000"} for i in range(10)], None, f"{10**30:,}"),
        ([{"name": "F", "type": "CHUNK[INT]", "range": "1-100000",
           "chunks": {"defaultTaskCount": 1, "rangeConstraint": "CONTIGUOUS"}},
          {"name": "X", **_FOUR_BILLION}, {"name": "Y", **_FOUR_BILLION}], None, f"{16 * 10**23:,}"),
        # products inside an association, each past 2**63 (the model's own length failed within the association)
        ([{"name": n, **_FOUR_BILLION} for n in "ABCD"], "(A * B, C * D)", f"{16 * 10**18:,}"),
    ],
)  # fmt: skip
def test_spaces_past_64_bits_of_tasks_are_refused_without_expanding(
    space: list[dict[str, Any]], combination: str | None, tasks: str
) -> None:
    """`len()` of openjd-model's space is an index-sized integer: past 2**63 tasks it was an OverflowError, a 500."""
    template = one_step(space, extensions=["TASK_CHUNKING"])
    if combination is not None:
        template["steps"][0]["parameterSpace"]["combination"] = combination
    start = time.monotonic()
    with pytest.raises(CompileError, match=f"at most {MAX_TASKS:,}") as info:
        compile_({"template": template})
    assert info.value.field == "template" and f"the template makes {tasks} tasks" in info.value.message
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("text", ["[" * 900 + "]" * 900, "- " * 2000 + "x", "a: " + "[" * 990 + "]" * 990,
                                  '{"a":' * 2000 + "1" + "}" * 2000, "a: " + "[" * 40 + "]" * 40])  # fmt: skip
def test_a_template_nested_too_deep_is_refused_naming_the_template(text: str) -> None:
    """YAML's and JSON's parsers recurse per level: 1,000 levels were a RecursionError, a 500 at the Server."""
    assert errors({"template": text})["template"].endswith("nested more than 32 levels deep")


def test_a_template_written_as_a_yaml_flow_mapping_is_read_as_yaml() -> None:
    """Text beginning with `{` was read as JSON only: `{specificationVersion: …}` is YAML, and valid."""
    text = ("{specificationVersion: jobtemplate-2023-09, name: flow, steps: [{name: S, script: "
            "{actions: {onRun: {command: echo}}}}]}")  # fmt: skip
    tasks = compile_({"template": text})
    assert len(tasks) == 1
    e = errors({"template": '{"name": "x",'})
    assert e["template"].startswith("not valid JSON"), e  # neither: the JSON parser's word, for JSON writers


def test_huge_template_text_is_refused() -> None:
    big = {"template": one_step([{"name": "X", "type": "STRING", "range": ["x" * 1000] * 300}])}
    assert "at most" in errors(big)["template"]


def test_large_fan_in_goes_through_one_barrier_task() -> None:
    t = one_step([{"name": "X", "type": "INT", "range": "1-200"}])
    t["steps"].append({"name": "After", "dependencies": [{"dependsOn": "S"}],
                       "parameterSpace": {"taskParameterDefinitions": [{"name": "Y", "type": "INT", "range": "1-100"}]},
                       "script": {"actions": {"onRun": {"command": "echo"}}}})  # fmt: skip
    tasks = compile_({"template": t})
    assert len(tasks) == 200 + 1 + 100
    barrier = tasks[200]
    assert barrier.depends_on == list(range(200)) and barrier.commands[0]["name"] == "echo"
    assert all(task.depends_on == [200] for task in tasks[201:])


def test_large_values_times_many_tasks_are_refused() -> None:
    # 50 values of 8 KB each are fine once, not copied into 100,000 tasks
    t = one_step([{"name": "X", "type": "INT", "range": "1-100000"}])
    t["parameterDefinitions"] = [{"name": f"P{i}", "type": "STRING"} for i in range(50)]
    values = {f"P{i}": "v" * 8000 for i in range(50)}
    with pytest.raises(CompileError, match="MiB of template and parameter values"):
        compile_({"template": t, "parameters": values})


BIG_DEFAULT_YAML = """\
specificationVersion: jobtemplate-2023-09
name: big
parameterDefinitions:
- {name: N, type: INT, default: 99999999999999999999999999}
steps:
- name: S
  script:
    actions:
      onRun: {command: echo, args: ["{{Param.N}}"]}
"""


@pytest.mark.parametrize(
    ("template", "where"),
    [
        (BIG_DEFAULT_YAML, "parameterDefinitions[0].default"),
        (json.dumps(one_step([{"name": "X", "type": "INT", "range": [1, 2**64]}])),  # JSON text
         "steps[0].parameterSpace.taskParameterDefinitions[0].range[1]"),
        (one_step([{"name": "X", "type": "INT", "range": [-(2**63), 1]}]),  # an object; -2**63 is past ±(2**63 - 1)
         "steps[0].parameterSpace.taskParameterDefinitions[0].range[0]"),
        (one_step([{"name": "X", "type": "INT", "range": [1]}], parameterDefinitions=[
            {"name": "N", "type": "INT", "default": 1, "minValue": 0, "maxValue": 10**30}]),
         "parameterDefinitions[0].maxValue"),
    ],
)  # fmt: skip
def test_integers_past_64_bits_are_refused_naming_where(template: Any, where: str) -> None:
    """Each task's template is written with orjson, which holds 64-bit integers only: the job passed validation,
    then its submission was a 500."""
    e = errors({"template": template})
    assert e == {"template": f"{where}: integers in a template are at most {2**63 - 1} either side of zero"}, e


def test_integers_within_64_bits_are_kept() -> None:
    space = [{"name": "X", "type": "INT", "range": [2**62, 2**63 - 1, -(2**63) + 1]}]
    tasks = compile_({"template": BIG_DEFAULT_YAML.replace("99999999999999999999999999", str(2**62))})
    assert tasks[0].commands[0]["parameters"]["job_parameters"] == {"N": str(2**62)}
    tasks = compile_({"template": one_step(space)})
    assert [t.name for t in tasks] == [f"S X={2**62}", f"S X={2**63 - 1}", f"S X={-(2**63) + 1}"]
    orjson.dumps([t.commands for t in tasks])  # as the task writer stores them


def _steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"specificationVersion": "jobtemplate-2023-09", "name": "t", "steps": list(steps)}


def _step(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "script": {"actions": {"onRun": {"command": "echo"}}}, **extra}


_AB = [{"name": "A", "type": "INT", "range": "1-3"}, {"name": "B", "type": "INT", "range": "1-3"}]
_YAML = "specificationVersion: jobtemplate-2023-09\nname: y\nsteps:\n- name: S\n  script:\n    actions:\n" \
        "      onRun:\n        command: echo\n"  # fmt: skip


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        # openjd-model failed while wording these refusals (an IndexError, a RecursionError): 500s at the Server
        (_steps(_step("A", dependencies=[{"dependsOn": "B"}]), _step("B", dependencies=[{"dependsOn": "A"}])),
         "Step dependencies form a cycle: A -> B -> A"),
        (_steps(_step("S", parameterSpace={"taskParameterDefinitions": _AB,
                                           "combination": "(" * 500 + "A" + ")" * 500 + "*B"})),
         "the template's expressions are nested too deeply"),
        # YAML that is no JSON: keys that are a date or binary data, NaN and infinity (a decimal.InvalidOperation)
        (_YAML.replace("name: y", "name: y\n2001-01-01: d"), "a key of the template is a datetime.date, not text"),
        (_YAML.replace("name: y", "name: y\n!!binary aGVsbG8=: d"), "a key of the template is a bytes, not text"),
        (_YAML.replace("  script:", "  hostRequirements: {amounts: [{name: amount.worker.vcpu, min: .nan}]}\n"
                                    "  script:"), "NaN and infinity are not numbers a template may hold"),
        ('{"specificationVersion": "jobtemplate-2023-09", "name": "j", "x": -Infinity, "steps": []}',
         "NaN and infinity are not numbers a template may hold (-Infinity)"),
        # a key given twice kept the last value without a word
        (_YAML.replace("name: y", "name: y\nname: z"), "the key 'name' is given twice (line 3)"),
        ('{"specificationVersion": "jobtemplate-2023-09", "name": "j", "name": "k", "steps": []}',
         "the key 'name' is given twice"),
    ],
)  # fmt: skip
def test_templates_the_model_could_not_word_or_json_cannot_hold_are_refused_naming_why(
    template: Any, reason: str
) -> None:
    assert reason in errors({"template": template})["template"]


def chain(steps: int) -> dict[str, Any]:
    """`steps` steps, each depending on the one before, listed last step first (the smallest such template)."""

    def step(i: int) -> dict[str, Any]:
        return _step(f"s{i}", dependencies=[{"dependsOn": f"s{i - 1}"}]) if i else _step("s0")

    return _steps(*(step(i) for i in reversed(range(steps))))


@pytest.mark.timeout(30)
def test_a_chain_of_as_many_steps_as_a_template_holds_is_ordered() -> None:
    """Ordering the steps recursed once per step: a chain of 1,000 (137 KB) was a RecursionError, a 500. The
    size limit holds about 2,400 such steps."""
    template = chain(2_400)
    assert len(orjson.dumps(template)) <= MAX_TEMPLATE_BYTES
    tasks = compile_({"template": template})
    assert [t.name for t in tasks] == [f"s{i}" for i in range(2_400)]
    assert [t.depends_on for t in tasks] == [[]] + [[i] for i in range(2_399)]


def test_a_cycle_met_while_ordering_steps_is_refused() -> None:
    """The model refuses a cycle as it decodes a template; ordering does not take its word for it."""
    steps = [
        SimpleNamespace(name=n, dependencies=[SimpleNamespace(dependsOn=d)])
        for n, d in [("A", "B"), ("B", "C"), ("C", "B")]
    ]
    with pytest.raises(CompileError, match="step dependencies form a cycle through 'B'"):
        step_order(cast("Any", SimpleNamespace(steps=steps)))
    steps[2].dependencies = []
    assert step_order(cast("Any", SimpleNamespace(steps=steps))) == [2, 1, 0]


def test_adaptive_chunks_are_default_task_count_long() -> None:
    """openjd-model cannot count an adaptive space (a ValueError, a 500): chunks are `defaultTaskCount` long."""
    chunks = {"defaultTaskCount": 4, "targetRuntimeSeconds": 60, "rangeConstraint": "CONTIGUOUS"}
    space = [{"name": "F", "type": "CHUNK[INT]", "range": "1-10", "chunks": chunks}]
    tasks = compile_({"template": one_step(space, extensions=["TASK_CHUNKING"])})
    assert [t.commands[0]["parameters"]["task_parameters"]["F"]["value"] for t in tasks] == ["1-4", "5-7", "8-10"]


def test_a_submission_decodes_its_template_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting's check and the compiler decoded it again: up to 0.3 s a time for a big template."""
    from openjd.model import decode_job_template

    calls: list[str] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(kwargs["template"]["name"])
        return decode_job_template(**kwargs)

    monkeypatch.setattr("services.server.jobtypes.openjd_job.decode_job_template", counted)
    text = (TEMPLATES / "several_steps.yaml").read_text().replace("name: ", "name: once-", 1)
    settings = {"template": text, "parameters": {"OutDir": "/tmp/o", "Frames": "1-2"}}
    first = compile_(settings)
    again = compile_(settings)
    assert len(calls) == 1, calls
    assert [(t.name, t.commands, t.depends_on) for t in first] == [(t.name, t.commands, t.depends_on) for t in again]


@pytest.mark.parametrize(
    ("definition", "said"),
    [
        ({"type": "FLOAT", "range": ["1.5", "nan"]}, "nan is not a finite number"),
        ({"type": "FLOAT", "range": ["1e999"]}, "1e999 is not a finite number"),
        ({"type": "FLOAT", "range": ["-inf", 2]}, "-inf is not a finite number"),
        ({"type": "INT", "range": "-9223372036854775813--9223372036854775808"}, "-9223372036854775813 is past 64 bits"),
        ({"type": "INT", "range": [1, str(2**63)]}, f"{2**63} is past 64 bits"),
    ],
)
def test_task_parameter_values_a_job_parameter_could_not_be_are_refused(definition: dict[str, Any], said: str) -> None:
    """From an API fuzzing audit: range values took no check, where the same values as job parameters are refused."""
    with pytest.raises(CompileError, match=f"parameter 'X': {re.escape(said)}") as info:
        compile_({"template": one_step([{"name": "X", **definition}])})
    assert info.value.field == "template"


def test_task_parameter_values_on_the_edges_are_kept() -> None:
    space: list[dict[str, Any]] = [
        {"name": "X", "type": "INT", "range": [-(2**63) + 1, 2**63 - 1]},
        {"name": "F", "type": "FLOAT", "range": ["1e308"]},
    ]
    assert len(compile_({"template": one_step(space)})) == 2

"""OpenJD host requirements against worker capabilities: attributes, amounts, and the step a task runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.protocol.host_requirements import (
    HostCapabilities,
    Requirements,
    cpu_arch,
    describe,
    of_commands,
    parse,
    unmet,
)

LINUX_8 = HostCapabilities(
    attributes={"attr.worker.os.family": ["linux"], "attr.worker.cpu.arch": ["x86_64"], "attr.custom.lic": ["nuke"]},
    amounts={"amount.worker.vcpu": 8, "amount.worker.memory": 16000},
)


def req(**hr: object) -> Requirements:
    found = parse(hr)
    assert found is not None
    return found


def test_attributes_any_of_and_all_of() -> None:
    assert unmet(req(attributes=[{"name": "attr.worker.os.family", "anyOf": ["windows", "Linux"]}]), LINUX_8) is None
    why = unmet(req(attributes=[{"name": "attr.worker.os.family", "anyOf": ["windows"]}]), LINUX_8)
    assert why == "attr.worker.os.family is none of windows"
    assert unmet(req(attributes=[{"name": "attr.custom.lic", "allOf": ["nuke"]}]), LINUX_8) is None
    assert unmet(req(attributes=[{"name": "attr.custom.lic", "allOf": ["nuke", "maya"]}]), LINUX_8) == (
        "attr.custom.lic lacks maya"
    )


def test_amounts_with_bounds() -> None:
    assert unmet(req(amounts=[{"name": "amount.worker.vcpu", "min": 4, "max": 8}]), LINUX_8) is None
    assert unmet(req(amounts=[{"name": "amount.worker.vcpu", "min": 16}]), LINUX_8) == (
        "amount.worker.vcpu: 8, at least 16 wanted"
    )
    assert unmet(req(amounts=[{"name": "amount.worker.memory", "max": 8000}]), LINUX_8) == (
        "amount.worker.memory: 16000, at most 8000 wanted"
    )
    assert unmet(req(amounts=[{"name": "amount.worker.gpu", "min": 1}]), LINUX_8) == (
        "amount.worker.gpu: none (at least 1 wanted)"
    )
    assert unmet(req(amounts=[{"name": "amount.worker.gpu", "max": 0}]), LINUX_8) is None
    assert "amount.worker.vcpu ≥ 4 ≤ 8" in describe(req(amounts=[{"name": "amount.worker.vcpu", "min": 4, "max": 8}]))


def test_the_step_of_an_openjd_command() -> None:
    template = {"steps": [
        {"name": "A", "script": {}},
        {"name": "B", "hostRequirements": {"amounts": [{"name": "amount.worker.vcpu", "min": 2}]}},
    ]}  # fmt: skip
    command = {"name": "openjd-task", "parameters": {"template": template, "step": "B"}}
    found = of_commands([command])
    assert found is not None and found.amounts == (("amount.worker.vcpu", 2.0, None),)
    assert of_commands([{**command, "parameters": {"template": template, "step": "A"}}]) is None
    assert of_commands([{"name": "blender-render", "parameters": {}}]) is None
    assert parse({}) is None and parse(None) is None


def test_capabilities_are_bounded_and_arch_names_normalised() -> None:
    assert cpu_arch("AMD64") == "x86_64" and cpu_arch("aarch64") == "arm64"
    with pytest.raises(ValidationError):
        HostCapabilities(amounts={"amount.worker.vcpu": float("inf")})
    with pytest.raises(ValidationError):
        HostCapabilities(attributes={f"a{n}": [] for n in range(101)})
    with pytest.raises(ValidationError):
        HostCapabilities(attributes={"attr.custom.x": [str(n) for n in range(51)]})

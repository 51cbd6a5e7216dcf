"""Open Job Description host requirements matched against what a worker offers (pure, no I/O).

A step's `hostRequirements` lists attributes (`attr.worker.os.family` anyOf `[linux]`, `attr.worker.cpu.arch`,
`attr.custom.*`) and amounts (`amount.worker.vcpu` min 8, `amount.worker.memory` in MiB, `amount.custom.*`).
A worker reports its `HostCapabilities` at sign-on; the Manager gives a task only to a worker whose
capabilities meet its step's requirements. Names and values compare without regard to case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from services.protocol.common import WireModel

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
OS_FAMILY = "attr.worker.os.family"
CPU_ARCH = "attr.worker.cpu.arch"
VCPU = "amount.worker.vcpu"
MEMORY = "amount.worker.memory"  # MiB
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}


class HostCapabilities(WireModel):
    """What a worker offers: attribute values by name and amounts by name (names as OpenJD spells them)."""

    attributes: dict[Name, Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=50)]] = (
        Field(default_factory=dict, max_length=100)
    )
    amounts: dict[Name, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=100
    )


def cpu_arch(machine: str) -> str:
    """OpenJD's name for `platform.machine()`: x86_64 or arm64 (others as reported, lower case)."""
    key = machine.strip().lower()
    return _ARCH_ALIASES.get(key, key)


@dataclass(frozen=True, slots=True)
class Requirements:
    """any_of: attribute → values one of which the worker must have; all_of: values it must all have;
    amounts: name → (min, max), either may be None."""

    any_of: tuple[tuple[str, frozenset[str]], ...] = ()
    all_of: tuple[tuple[str, frozenset[str]], ...] = ()
    amounts: tuple[tuple[str, float | None, float | None], ...] = ()


def _values(raw: Any) -> frozenset[str]:
    return frozenset(str(v).lower() for v in raw) if isinstance(raw, list) else frozenset()


def parse(host_requirements: Mapping[str, Any] | None) -> Requirements | None:
    """A step's `hostRequirements` (as the template has it, validated by openjd-model) → Requirements."""
    if not host_requirements:
        return None
    any_of, all_of, amounts = [], [], []
    for a in host_requirements.get("attributes") or []:
        name = str(a.get("name", "")).lower()
        if "anyOf" in a:
            any_of.append((name, _values(a["anyOf"])))
        if "allOf" in a:
            all_of.append((name, _values(a["allOf"])))
    for m in host_requirements.get("amounts") or []:
        low, high = m.get("min"), m.get("max")
        amounts.append((str(m.get("name", "")).lower(), _number(low), _number(high)))
    if not (any_of or all_of or amounts):
        return None
    return Requirements(tuple(any_of), tuple(all_of), tuple(amounts))


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Offer:
    """Capabilities with names and values in lower case, made once per worker for repeated matching."""

    attributes: dict[str, frozenset[str]]
    amounts: dict[str, float]


def offer(caps: HostCapabilities | None) -> Offer:
    attributes = {k.lower(): frozenset(v.lower() for v in vs) for k, vs in (caps.attributes if caps else {}).items()}
    return Offer(attributes, {k.lower(): v for k, v in (caps.amounts if caps else {}).items()})


def unmet(req: Requirements, caps: HostCapabilities | Offer | None) -> str | None:
    """Why a worker with these capabilities cannot run the task, or None when it can."""
    found = caps if isinstance(caps, Offer) else offer(caps)
    attributes, amounts = found.attributes, found.amounts
    for name, wanted in req.any_of:
        if not attributes.get(name, frozenset()) & wanted:
            return f"{name} is none of {', '.join(sorted(wanted))}"
    for name, wanted in req.all_of:
        if missing := wanted - attributes.get(name, frozenset()):
            return f"{name} lacks {', '.join(sorted(missing))}"
    for name, low, high in req.amounts:
        have = amounts.get(name)
        if have is None:
            if low is not None and low > 0:
                return f"{name}: none (at least {low:g} wanted)"
            continue
        if low is not None and have < low:
            return f"{name}: {have:g}, at least {low:g} wanted"
        if high is not None and have > high:
            return f"{name}: {have:g}, at most {high:g} wanted"
    return None


def describe(req: Requirements) -> str:
    parts = [f"{n} any of {'/'.join(sorted(v))}" for n, v in req.any_of]
    parts += [f"{n} all of {'/'.join(sorted(v))}" for n, v in req.all_of]
    for name, low, high in req.amounts:
        bounds = [f"≥ {low:g}" if low is not None else "", f"≤ {high:g}" if high is not None else ""]
        parts.append(f"{name} {' '.join(b for b in bounds if b)}".strip())
    return "; ".join(parts)


def of_commands(commands: list[Any]) -> Requirements | None:
    """The host requirements of a task's OpenJD step, read from its `openjd-task` command (None: none)."""
    for command in commands:
        name = getattr(command, "name", None) or (command.get("name") if isinstance(command, dict) else None)
        if name != "openjd-task":
            continue
        params = getattr(command, "parameters", None) or command.get("parameters") or {}
        template, step = params.get("template"), params.get("step")
        if not isinstance(template, dict):
            return None
        for s in template.get("steps") or []:
            if isinstance(s, dict) and s.get("name") == step:
                found = s.get("hostRequirements")
                return parse(found) if isinstance(found, dict) else None
    return None

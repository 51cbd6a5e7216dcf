"""What this worker offers for Open Job Description host requirements: its OS family, CPU architecture, vCPUs
and memory, plus the attributes and amounts the farm configures (`--host-attribute`, `--host-amount`)."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable

import psutil

from services.protocol.host_requirements import CPU_ARCH, MEMORY, OS_FAMILY, VCPU, HostCapabilities, cpu_arch
from services.protocol.platforms import current

MIB = 1024 * 1024


def _pairs(items: Iterable[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what} {item!r}: write NAME=VALUE")
        name = name.strip()
        prefix = "attr." if what == "host attribute" else "amount."
        out.append((name if name.startswith(prefix) else f"{prefix}custom.{name}", value.strip()))
    return out


def gather(attributes: Iterable[str] = (), amounts: Iterable[str] = ()) -> HostCapabilities:
    """This machine's capabilities; the configured NAME=VALUE pairs add to (or override) the measured ones."""
    caps = HostCapabilities(
        attributes={OS_FAMILY: [current().value], CPU_ARCH: [cpu_arch(platform.machine())]},
        amounts={VCPU: float(os.cpu_count() or 1), MEMORY: float(psutil.virtual_memory().total // MIB)},
    )
    for name, value in _pairs(attributes, "host attribute"):
        caps.attributes.setdefault(name, [])
        if value not in caps.attributes[name]:
            caps.attributes[name].append(value)
    for name, value in _pairs(amounts, "host amount"):
        try:
            caps.amounts[name] = float(value)
        except ValueError:
            raise ValueError(f"host amount {name}={value!r}: not a number") from None
    return caps

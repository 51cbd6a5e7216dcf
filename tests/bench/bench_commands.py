"""Command contract benchmarks: what the typed builder costs a compile, and the parameter check costs a task.

Run with `pytest -m bench -s tests/bench/bench_commands.py`; figures are printed and recorded in
docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import time
import timeit

import pytest

from services.protocol.commands import BLENDER_RENDER, COMMANDS, BlenderRenderParams

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]

N = 100_000


def test_builder_against_a_literal_dict() -> None:
    base: BlenderRenderParams = {"blendfile": "/p/big.blend", "output": "/r/f_######", "format": "PNG", "frames": ""}
    built = min(timeit.repeat(lambda: [BLENDER_RENDER({**base, "frames": "7"}) for _ in range(N)], number=1, repeat=7))
    literal = min(
        timeit.repeat(
            lambda: [{"name": "blender-render", "parameters": {**base, "frames": "7"}} for _ in range(N)],
            number=1,
            repeat=7,
        )
    )
    assert BLENDER_RENDER({**base, "frames": "7"}) == {"name": "blender-render", "parameters": {**base, "frames": "7"}}
    print(f"\n100,000 blender-render commands: spec call {built * 1000:.1f} ms, literal dict {literal * 1000:.1f} ms")


def test_parameter_check_per_command() -> None:
    print()
    for spec in COMMANDS.values():
        start = time.perf_counter()
        spec.validate(spec.example)  # builds the check on first use
        first = time.perf_counter() - start
        each = min(timeit.repeat(lambda spec=spec: spec.validate(spec.example), number=2000, repeat=5)) / 2000  # type: ignore[misc]
        print(f"{spec.name}: first check (building it) {first * 1000:.2f} ms, then {each * 1e6:.2f} µs a task")

"""A worker's utilisation sample refuses numbers no JSON column keeps, without the input guard's help (a sample
the Worker builds in Python, or a body parsed elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.protocol.farm import MAX_LOAD, MAX_MEMORY_MB, Utilisation

SAMPLE: dict[str, Any] = {"time": "2026-12-03T10:00:00Z", "cpu_percent": 5, "memory_percent": 5, "memory_used_mb": 1}


@pytest.mark.parametrize("field", ["cpu_percent", "memory_percent", "memory_used_mb", "load_1m", "gpu_percent"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_no_field_takes_infinity_or_nan(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        Utilisation.model_validate({**SAMPLE, field: value})
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_memory_and_load_are_bounded() -> None:
    for field, bound in (("memory_used_mb", MAX_MEMORY_MB), ("load_1m", MAX_LOAD)):
        assert getattr(Utilisation.model_validate({**SAMPLE, field: bound}), field) == bound
        with pytest.raises(ValidationError, match=field):
            Utilisation.model_validate({**SAMPLE, field: bound * 2})
    # a big machine is well inside: 64 TiB in use, a load of ten thousand
    assert Utilisation.model_validate({**SAMPLE, "memory_used_mb": 64 * 2**20, "load_1m": 1e4}).load_1m == 1e4


def test_the_time_is_made_utc_and_one_with_no_utc_equivalent_is_refused() -> None:
    """It was a plain datetime: `9999-12-31T23:59:59-14:00` passed and the farm's lists showed it as sent."""
    sample = Utilisation.model_validate({**SAMPLE, "time": "2026-12-03T12:00:00+02:00"})
    assert sample.time.isoformat() == "2026-12-03T10:00:00+00:00"
    with pytest.raises(ValidationError) as info:
        Utilisation.model_validate({**SAMPLE, "time": "9999-12-31T23:59:59-14:00"})
    assert [e["loc"] for e in info.value.errors()] == [("time",)]

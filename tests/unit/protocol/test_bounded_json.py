"""A free-form JSON value's size check (settings, software versions): exact at the limit, and a value far past it
refused without the slow exact measure (an 8 MB body of numbers held the Server's event loop 0.6 s in it)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.protocol import common
from services.protocol.common import bounded_json

LIMIT = 1000


class Holder(BaseModel):
    value: Annotated[Any, bounded_json(LIMIT)]


def _exact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)  # fmt: skip


@given(JSON_VALUES)
def test_the_quick_measure_is_never_more_than_its_margin_over_the_exact_one(value: Any) -> None:
    """So the quick refusal refuses nothing the exact measure takes. (Not never longer: orjson writes 1e-05 as
    `0.00001`, which a value of such floats just under the limit was refused for.)"""
    assert len(orjson.dumps(value, default=str)) <= _exact(value) * common.QUICK_MARGIN


def test_small_floats_just_under_the_limit_are_taken() -> None:
    floats = [1e-05] * 166  # 997 bytes to json.dumps, 1,329 to orjson
    assert _exact(floats) <= LIMIT < len(orjson.dumps(floats))
    assert Holder(value=floats).value == floats
    with pytest.raises(ValidationError, match=f"over the limit of {LIMIT}"):
        Holder(value=[*floats, 1e-05])


@given(JSON_VALUES)
def test_what_the_exact_measure_takes_is_taken(value: Any) -> None:
    if _exact(value) <= LIMIT:
        assert Holder(value=value).value == value
    else:
        with pytest.raises(ValidationError, match=f"over the limit of {LIMIT}"):
            Holder(value=value)


def test_at_the_limit_it_is_exact() -> None:
    at = "a" * (LIMIT - 2)  # with its quotes: LIMIT bytes
    assert Holder(value=at).value == at
    with pytest.raises(ValidationError, match=f"{LIMIT + 1} bytes of JSON, over the limit of {LIMIT}"):
        Holder(value=at + "a")
    escaped = "é" * 166  # 2 bytes each to orjson, 6 to json.dumps: 998 bytes exactly, quoted
    assert _exact(escaped) == LIMIT - 2 and Holder(value=escaped).value == escaped


def test_what_the_quick_measure_cannot_write_is_left_to_the_exact_checks() -> None:
    with pytest.raises(ValidationError, match="nested more than"):
        Holder(value=_nested(300))  # orjson stops at 255 levels
    assert Holder(value=[2**70]).value == [2**70]  # orjson writes 64-bit integers only


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


def test_a_value_far_past_the_limit_is_refused_without_walking_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The depth walk and json.dumps took 0.6 s of the event loop for an 8 MB body of numbers; orjson 14 ms."""
    walked: list[Any] = []

    def depth(value: Any, level: int = 0) -> int:
        walked.append(value)
        return 1

    monkeypatch.setattr(common, "json_depth", depth)
    with pytest.raises(ValidationError, match="at least 1333342 bytes of JSON"):
        Holder(value={"command": [1] * 1_000_000})
    assert not walked
    Holder(value={"command": [1]})
    assert walked  # the walk is still made for what may be within the limit

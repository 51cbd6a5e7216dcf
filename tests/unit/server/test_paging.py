"""Keyset cursors: every value encode writes for a sort column comes back as it was; nothing else is taken."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.protocol.common import ID_MAX
from services.server.db.tables import TaskRow
from services.server.store import paging
from services.server.store.errors import Invalid
from services.server.store.jobs import SORTABLE


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("created", datetime(2024, 5, 1, 12, 30, 1, 123456, tzinfo=UTC)),  # as PostgreSQL gives it
        ("updated", datetime(2024, 5, 1, 12, 30, 1)),  # as SQLite gives it
        ("priority", 0),
        ("priority", 100),
        ("name", "ñ" * 200),  # the longest name, escaped to 6 characters a letter
        ("status", "soft-failed"),
    ],
)
def test_round_trip_for_every_sort_column(key: str, value: Any) -> None:
    assert paging.decode(paging.encode(value, ID_MAX), SORTABLE[key]) == (value, ID_MAX)


def test_a_date_with_an_offset_comes_back_as_the_same_instant_in_utc() -> None:
    when = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    back, _ = paging.decode(paging.encode(when, 1), SORTABLE["created"])
    assert back == when and back.tzinfo == UTC


def test_task_cursors_round_trip() -> None:
    assert paging.decode(paging.encode(2**31 - 1, 7), TaskRow.index) == (2**31 - 1, 7)


def _forge(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    ("key", "pair"),
    [
        ("name", ["x" * 201, 1]),  # longer than the column (the route's length limit is not the only guard)
        ("status", ["s" * 25, 1]),
        ("priority", [2**31, 1]),
        ("created", [{"t": "2020-01-01T00:00:00+99:00"}, 1]),
        ("name", ["name", ID_MAX + 1]),
        ("name", [None, 1]),
    ],
)
def test_values_the_column_cannot_hold_are_refused(key: str, pair: list[Any]) -> None:
    with pytest.raises(Invalid) as caught:
        paging.decode(_forge(pair), SORTABLE[key])
    assert caught.value.field == "cursor"


def test_a_deeply_nested_cursor_is_refused_not_a_crash() -> None:
    with pytest.raises(Invalid):
        paging.decode(base64.urlsafe_b64encode(b"[" * 100_000).decode(), TaskRow.index)

"""The tables' times are local, as the job's are in its details: the tasks' Started, Updated and Ended were the
Server's UTC text beside them (an audit saw 08:13 beside 17:13 in Tokyo), with no zone said."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.models.columns import fmt_iso


@pytest.fixture
def in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    fmt_iso.cache_clear()
    yield
    monkeypatch.undo()
    time.tzset()
    fmt_iso.cache_clear()


def test_a_servers_utc_time_is_shown_in_local_time(in_tokyo: None) -> None:
    assert fmt_iso("2026-12-07T08:13:48.123456+00:00") == "2026-12-07 17:13:48"
    assert fmt_iso("2026-12-07T20:00:00Z") == "2026-12-08 05:00:00"  # past midnight there


def test_text_that_is_no_time_is_shown_as_before(in_tokyo: None) -> None:
    assert fmt_iso("not a timeTxx") == "not a time xx"

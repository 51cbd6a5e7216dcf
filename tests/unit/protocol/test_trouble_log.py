"""A lasting trouble is logged when it starts, when it changes and once a minute, with how many were held back."""

from __future__ import annotations

from services.protocol.trouble_log import TroubleLog


def test_a_trouble_is_due_when_it_starts_changes_or_a_minute_passed() -> None:
    now = [1000.0]
    said = TroubleLog(every=60.0, clock=lambda: now[0])
    assert said.due("disk full") and said.held_back == 0
    assert [said.due("disk full") for _ in range(5)] == [False] * 5
    now[0] += 59.0
    assert not said.due("disk full")
    assert said.due("database away")  # another trouble: at once
    assert said.held_back == 6
    assert not said.due("database away")
    now[0] += 60.0
    assert said.due("database away") and said.held_back == 1

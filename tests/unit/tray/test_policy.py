"""The tray policy as a table: facts in, decision out; and the commands the edge-triggered policy sends."""

from __future__ import annotations

import pytest

from app.tray.policy import AgentState, Command, Decision, Facts, Policy, TrayState, Unavailable, decide

A = AgentState
S = TrayState
U = Unavailable
IDLE, RENDER = A.IDLE, A.RENDERING
AWAY, HERE = 700.0, 5.0  # idle seconds, against the default away_after of 600

TABLE: list[tuple[Facts, Decision]] = [
    # nothing holds it back
    (Facts(IDLE), Decision(True, False, None, S.WAITING)),
    (Facts(RENDER), Decision(True, False, None, S.RENDERING)),
    # the artist's pause; the render goes on (finish-then-pause; "Pause" sends a stop of its own)
    (Facts(IDLE, paused=True), Decision(False, False, U.PAUSED_BY_USER, S.PAUSED)),
    (Facts(RENDER, paused=True), Decision(False, False, U.PAUSED_BY_USER, S.RENDERING)),
    # the wrangler's sleep comes after the artist's pause
    (Facts(IDLE, paused=True, asleep=True), Decision(False, False, U.PAUSED_BY_USER, S.PAUSED)),
    (Facts(IDLE, asleep=True), Decision(False, False, U.ASLEEP, S.ASLEEP)),
    # outside the hours: nothing new, the running task finishes
    (Facts(IDLE, in_hours=False), Decision(False, False, U.OUTSIDE_HOURS, S.OUTSIDE_HOURS)),
    (Facts(RENDER, in_hours=False), Decision(False, False, U.OUTSIDE_HOURS, S.RENDERING)),
    # only when away: the user at the machine stops a render at once...
    (Facts(IDLE, away_only=True, idle_seconds=HERE), Decision(False, False, U.USER_ACTIVE, S.USER_ACTIVE)),
    (Facts(RENDER, away_only=True, idle_seconds=HERE), Decision(False, True, U.USER_ACTIVE, S.USER_ACTIVE)),
    # ...even when another reason also holds
    (
        Facts(RENDER, away_only=True, idle_seconds=HERE, in_hours=False),
        Decision(False, True, U.OUTSIDE_HOURS, S.OUTSIDE_HOURS),
    ),
    # ...unless the option says the task may finish
    (
        Facts(RENDER, away_only=True, idle_seconds=HERE, finish_on_return=True),
        Decision(False, False, U.USER_ACTIVE, S.RENDERING),
    ),
    (Facts(IDLE, away_only=True, idle_seconds=AWAY), Decision(True, False, None, S.WAITING)),
    (Facts(IDLE, away_only=True, idle_seconds=600.0), Decision(True, False, None, S.WAITING)),
    (Facts(IDLE, away_only=True, idle_seconds=599.9), Decision(False, False, U.USER_ACTIVE, S.USER_ACTIVE)),
    (Facts(IDLE, away_only=True, idle_seconds=3.0, away_after=2.0), Decision(True, False, None, S.WAITING)),
    # unknown idle time never proves the user away
    (Facts(IDLE, away_only=True, idle_seconds=None), Decision(False, False, U.USER_ACTIVE, S.USER_ACTIVE)),
    (Facts(IDLE, away_only=False, idle_seconds=None), Decision(True, False, None, S.WAITING)),
    # the child's own states win the icon
    (Facts(A.STOPPED), Decision(True, False, None, S.STOPPED)),
    (Facts(A.UNREACHABLE, paused=True), Decision(False, False, U.PAUSED_BY_USER, S.UNREACHABLE)),
]


@pytest.mark.parametrize(("facts", "expected"), TABLE)
def test_decide(facts: Facts, expected: Decision) -> None:
    assert decide(facts) == expected


def test_the_policy_sends_only_changes_and_stops_a_render_once() -> None:
    p = Policy()
    _, cmds = p.step(Facts(IDLE, away_only=True, idle_seconds=HERE))
    assert cmds == [Command("pause", reason="user-active")]
    assert p.step(Facts(IDLE, away_only=True, idle_seconds=HERE + 1))[1] == []
    assert p.step(Facts(IDLE, away_only=True, idle_seconds=AWAY))[1] == [Command("resume")]
    assert p.step(Facts(RENDER, away_only=True, idle_seconds=AWAY))[1] == []
    # the user comes back while it renders: one stop-now, not one per tick
    assert p.step(Facts(RENDER, away_only=True, idle_seconds=0.1))[1] == [
        Command("pause", now=True, reason="user-active")
    ]
    assert p.step(Facts(RENDER, away_only=True, idle_seconds=0.2))[1] == []
    assert p.step(Facts(IDLE, away_only=True, idle_seconds=1.0))[1] == []
    assert p.step(Facts(IDLE, away_only=True, idle_seconds=AWAY))[1] == [Command("resume")]
    # the hours end: a lazy pause, with the reason
    assert p.step(Facts(RENDER, in_hours=False))[1] == [Command("pause", now=False, reason="outside-hours")]
    assert p.step(Facts(IDLE, in_hours=False))[1] == []


def test_a_restarted_worker_is_told_again() -> None:
    p = Policy()
    assert p.step(Facts(IDLE, paused=True))[1] == [Command("pause", reason="paused-by-user")]
    assert p.step(Facts(A.STOPPED, paused=True))[1] == []
    assert p.step(Facts(IDLE, paused=True))[1] == [Command("pause", reason="paused-by-user")]
    assert Command("pause", now=True, reason="asleep").as_json() == {"cmd": "pause", "now": True, "reason": "asleep"}
    assert Command("resume").as_json() == {"cmd": "resume"}

"""The tray's policy: may the worker claim new work, must a running render stop, and what the icon says.

One pure function (`decide`) over the facts, and a small edge-triggered `Policy` that turns changes of the
decision into control commands for the worker. Qt-free, so the table test needs nothing but Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TrayState(StrEnum):
    RENDERING = "rendering"
    WAITING = "waiting"
    PAUSED = "paused"
    OUTSIDE_HOURS = "outside-hours"
    USER_ACTIVE = "user-active"
    ASLEEP = "asleep"
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"


class Unavailable(StrEnum):
    """Why the worker claims nothing; it travels to the Manager, the Server and the Workers tab."""

    PAUSED_BY_USER = "paused-by-user"
    ASLEEP = "asleep"
    OUTSIDE_HOURS = "outside-hours"
    USER_ACTIVE = "user-active"


class AgentState(StrEnum):
    """What the worker child last reported (or that it is not running)."""

    STOPPED = "stopped"
    UNREACHABLE = "unreachable"  # running, but its Manager does not answer
    IDLE = "idle"
    RENDERING = "rendering"


@dataclass(frozen=True, slots=True)
class Facts:
    agent: AgentState
    paused: bool = False  # by the artist (menu)
    in_hours: bool = True  # the artist's rendering hours
    asleep: bool = False  # the wrangler's schedule or command
    away_only: bool = False  # "Render only when I'm away"
    idle_seconds: float | None = None  # None: unknown (then "away" cannot be proven)
    away_after: float = 600.0
    finish_on_return: bool = False  # let the running task finish when the user comes back


@dataclass(frozen=True, slots=True)
class Decision:
    may_claim: bool
    stop_running: bool  # stop the running render now and give its task back
    reason: Unavailable | None
    state: TrayState


def user_away(f: Facts) -> bool:
    return f.idle_seconds is not None and f.idle_seconds >= f.away_after


def decide(f: Facts) -> Decision:
    reason: Unavailable | None = None
    if f.paused:
        reason = Unavailable.PAUSED_BY_USER
    elif f.asleep:
        reason = Unavailable.ASLEEP
    elif not f.in_hours:
        reason = Unavailable.OUTSIDE_HOURS
    elif f.away_only and not user_away(f):
        reason = Unavailable.USER_ACTIVE
    # only the user's return stops a render at once (whatever else holds); the end of the hours lets it finish
    stop = f.agent == AgentState.RENDERING and f.away_only and not user_away(f) and not f.finish_on_return
    if f.agent == AgentState.STOPPED:
        state = TrayState.STOPPED
    elif f.agent == AgentState.UNREACHABLE:
        state = TrayState.UNREACHABLE
    elif f.agent == AgentState.RENDERING and not stop:
        state = TrayState.RENDERING
    elif reason is None:
        state = TrayState.WAITING
    else:
        state = TrayState(reason.value) if reason != Unavailable.PAUSED_BY_USER else TrayState.PAUSED
    return Decision(may_claim=reason is None, stop_running=stop, reason=reason, state=state)


@dataclass(frozen=True, slots=True)
class Command:
    """A control-channel command for the worker (see services.worker.control)."""

    cmd: str  # "pause" or "resume"
    now: bool = False
    reason: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"cmd": self.cmd}
        if self.cmd == "pause":
            out["now"] = self.now
            out["reason"] = self.reason
        return out


class Policy:
    """Remembers what the worker was last told, so each evaluation sends only what changed."""

    def __init__(self) -> None:
        self.last: Decision | None = None
        self._told: tuple[bool, str | None, bool] | None = None  # (may_claim, reason, stopped) as told

    def forget(self) -> None:
        """The worker restarted: it knows nothing; the next step tells it everything again."""
        self._told = None

    def step(self, facts: Facts) -> tuple[Decision, list[Command]]:
        d = decide(facts)
        self.last = d
        commands: list[Command] = []
        if facts.agent == AgentState.STOPPED:
            self._told = None
            return d, commands
        reason = d.reason.value if d.reason else None
        if d.stop_running:
            reason = Unavailable.USER_ACTIVE.value
            if self._told != (False, reason, True):
                commands.append(Command("pause", now=True, reason=reason))
                self._told = (False, reason, True)
        elif self._told is None or self._told[:2] != (d.may_claim, reason):
            commands.append(Command("resume") if d.may_claim else Command("pause", now=False, reason=reason))
            self._told = (d.may_claim, reason, False)
        return d, commands

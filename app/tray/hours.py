"""The artist's rendering hours: per weekday windows in local wall-clock time, windows may cross midnight.

Pure and Qt-free. A window is (start, end) in minutes since local midnight; end <= start means it runs past
midnight into the next day (Mon 19:00-08:00 covers Monday evening and Tuesday morning). Times are compared on
the local wall clock of the given zone (zoneinfo), so a window keeps its clock times across DST changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_WINDOWS_PER_DAY = 8
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class HoursError(ValueError):
    """Settings that do not describe rendering hours; the message names the day and the value."""


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # minutes since midnight, 0..1439
    end: int  # 1..1440; end <= start: ends on the next day

    def __post_init__(self) -> None:
        if not 0 <= self.start < DAY_MINUTES or not 0 <= self.end <= DAY_MINUTES:
            raise HoursError(f"window {self.start}-{self.end}: minutes must be within one day")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def text(self) -> str:
        return f"{_fmt(self.start)}–{_fmt(self.end)}"


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(text: str, *, is_end: bool = False) -> int:
    m = _HHMM.match(text.strip())
    if not m:
        raise HoursError(f"{text!r} is not a time like 19:00")
    minutes = int(m.group(1)) * 60 + int(m.group(2))
    if minutes > DAY_MINUTES or (minutes == DAY_MINUTES and not is_end):
        raise HoursError(f"{text!r}: only an end time may be 24:00")
    return minutes


@dataclass(slots=True)
class RenderingHours:
    """Windows per weekday (0 = Monday). `always` ignores the windows (the default: render any time)."""

    days: dict[int, list[Window]] = field(default_factory=lambda: {d: [] for d in range(7)})
    always: bool = True

    @classmethod
    def after_hours(cls) -> RenderingHours:
        """The usual studio set-up: weekdays 19:00-08:00, weekends all day."""
        days = {d: [Window(19 * 60, 8 * 60)] for d in range(5)}
        days[5] = [Window(0, DAY_MINUTES)]
        days[6] = [Window(0, DAY_MINUTES)]
        return cls(days=days, always=False)

    # -- evaluation -----------------------------------------------------------------------------------

    def allows(self, now: datetime, zone: tzinfo | None = None) -> bool:
        """True when `now` (aware) falls in a window, on the local wall clock of `zone` (default: now's)."""
        if self.always:
            return True
        local = _local(now, zone)
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        for w in self.days.get(today, []):
            if (w.crosses_midnight and minute >= w.start) or (w.start <= minute < w.end):
                return True
        return any(w.crosses_midnight and minute < w.end for w in self.days.get(yesterday, []))

    def next_start(self, now: datetime, zone: tzinfo | None = None) -> datetime | None:
        """When rendering is next allowed after `now` (aware, in `zone`); None when never or always."""
        if self.always:
            return None
        local = _local(now, zone)
        tz = local.tzinfo
        best: datetime | None = None
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            for w in self.days.get(day.weekday(), []):
                # the wall-clock start on that date; a start in a DST gap lands just after it
                at = datetime.combine(day, time(w.start // 60, w.start % 60), tzinfo=tz)
                at = at.astimezone(UTC).astimezone(tz)
                if at > local and (best is None or at < best):
                    best = at
            if best is not None:
                break
        return best

    # -- settings ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "always": self.always,
            "days": {DAYS[d]: [[_fmt(w.start), _fmt(w.end)] for w in self.days.get(d, [])] for d in range(7)},
        }

    @classmethod
    def from_json(cls, raw: object, *, skipped: list[str] | None = None) -> RenderingHours:
        """Hours from their settings form. Strict by default (HoursError at the first fault: `--hours`, the
        dialog); given `skipped` (hand-edited settings), a bad day, window or `always` is left out and said
        there, and the good windows are kept. A value that is not an object still raises."""
        if not isinstance(raw, dict):
            raise HoursError("rendering hours must be an object")

        def fault(message: str) -> None:
            if skipped is None:
                raise HoursError(message)
            skipped.append(message)

        days: dict[int, list[Window]] = {d: [] for d in range(7)}
        given = raw.get("days", {})
        if not isinstance(given, dict):
            raise HoursError("'days' must be an object keyed mon..sun")
        for key, windows in given.items():
            if key not in DAYS:
                fault(f"unknown day {key!r} (use {', '.join(DAYS)})")
                continue
            if not isinstance(windows, list):
                fault(f"{key}: give a list of at most {MAX_WINDOWS_PER_DAY} [start, end] windows")
                continue
            if len(windows) > MAX_WINDOWS_PER_DAY:
                fault(f"{key}: give a list of at most {MAX_WINDOWS_PER_DAY} [start, end] windows (the first "
                      f"{MAX_WINDOWS_PER_DAY} kept)")  # fmt: skip
                windows = windows[:MAX_WINDOWS_PER_DAY]
            for pair in windows:
                try:
                    days[DAYS.index(key)].append(_window(key, pair))
                except HoursError as exc:
                    fault(str(exc))
        always = parse_bool(raw.get("always", False))
        if always is None:
            fault(f"'always': {str(raw.get('always'))[:40]!r} is neither true nor false")
        return cls(days=days, always=bool(always))

    def summary(self) -> str:
        if self.always:
            return "any time"
        parts = [f"{DAYS[d].title()} {', '.join(w.text() for w in ws)}" for d, ws in self.days.items() if ws]
        return "; ".join(parts) or "never"


def _window(day: str, pair: object) -> Window:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
        raise HoursError(f'{day}: {str(pair)[:60]} is not a ["HH:MM", "HH:MM"] window')
    try:
        start, end = parse_hhmm(pair[0]), parse_hhmm(pair[1], is_end=True)
    except HoursError as exc:
        raise HoursError(f"{day}: {exc}") from None
    if start == end and start != 0:
        raise HoursError(f"{day}: window {pair[0]}-{pair[1]} is empty (use 00:00-24:00 for all day)")
    return Window(start, DAY_MINUTES if (start, end) == (0, 0) else end)


def parse_bool(value: object) -> bool | None:
    """A yes/no a person may have written: a JSON boolean, 1 or 0, or "true"/"false"/"yes"/"no"/"1"/"0" in
    any case; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
            value.strip().lower()
        )
    return None


def _local(now: datetime, zone: tzinfo | None) -> datetime:
    if now.tzinfo is None:
        raise ValueError("rendering hours are evaluated on an aware datetime")
    return now.astimezone(zone) if zone is not None else now

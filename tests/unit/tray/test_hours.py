"""Rendering hours: windows crossing midnight, empty days, DST days in local time, settings round trip."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.tray.hours import DAY_MINUTES, HoursError, RenderingHours, Window

PARIS = ZoneInfo("Europe/Paris")
NY = ZoneInfo("America/New_York")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=zone)


HOURS = RenderingHours.after_hours()  # Mon-Fri 19:00-08:00, Sat and Sun all day


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        (at(2026, 12, 7, 18, 59), False),  # Monday before the window
        (at(2026, 12, 7, 19, 0), True),  # Monday 19:00: starts
        (at(2026, 12, 7, 23, 59), True),
        (at(2026, 12, 8, 0, 0), True),  # Tuesday morning: Monday's window crossed midnight
        (at(2026, 12, 8, 7, 59), True),
        (at(2026, 12, 8, 8, 0), False),  # ends at 08:00
        (at(2026, 12, 7, 7, 0), False),  # Monday morning: Sunday is all day, and ends at midnight
        (at(2026, 12, 6, 23, 59), True),  # Sunday
        (at(2026, 12, 12, 7, 0), True),  # Saturday morning (Friday's window and Saturday's)
        (at(2026, 12, 12, 12, 0), True),
    ],
)
def test_windows_crossing_midnight(when: datetime, allowed: bool) -> None:
    assert HOURS.allows(when) is allowed


def test_an_empty_day_allows_nothing_and_always_allows_everything() -> None:
    hours = RenderingHours(days={d: [] for d in range(7)}, always=False)
    assert not hours.allows(at(2026, 12, 7, 12))
    assert hours.next_start(at(2026, 12, 7, 12)) is None
    assert hours.summary() == "never"
    assert RenderingHours().allows(at(2026, 12, 7, 12))


def test_evaluated_on_the_local_wall_clock_of_the_given_zone() -> None:
    utc_instant = datetime(2026, 12, 7, 18, 30, tzinfo=ZoneInfo("UTC"))  # 19:30 in Paris, 13:30 in New York
    assert HOURS.allows(utc_instant, PARIS)
    assert not HOURS.allows(utc_instant, NY)
    with pytest.raises(ValueError, match="aware"):
        HOURS.allows(datetime(2026, 12, 7, 12))


def test_dst_days_keep_wall_clock_times() -> None:
    # 29 March 2026, Paris springs forward at 02:00 -> 03:00; a 01:00-05:00 window is 3 real hours long
    sunday_night = RenderingHours(days={6: [Window(60, 300)], **{d: [] for d in range(6)}}, always=False)
    assert sunday_night.allows(at(2026, 3, 29, 3, 30))
    assert not sunday_night.allows(at(2026, 3, 29, 5, 0))
    # 25 October 2026, falls back at 03:00 -> 02:00: 02:30 happens twice and both are inside
    autumn = RenderingHours(days={6: [Window(120, 180)], **{d: [] for d in range(6)}}, always=False)
    assert autumn.allows(datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=PARIS))
    assert autumn.allows(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS))
    # the weekday evening window starts at 19:00 local on both sides of the change
    before = HOURS.next_start(at(2026, 3, 27, 12))  # Friday before the change
    after = HOURS.next_start(at(2026, 3, 30, 12))  # Monday after it
    assert before is not None and after is not None
    assert (before.hour, before.utcoffset()) == (19, at(2026, 3, 27, 12).utcoffset())
    assert (after.hour, after.utcoffset()) == (19, at(2026, 3, 30, 12).utcoffset())
    assert before.utcoffset() != after.utcoffset()


def test_a_start_inside_the_spring_gap_begins_just_after_it() -> None:
    hours = RenderingHours(days={6: [Window(150, 240)], **{d: [] for d in range(6)}}, always=False)  # 02:30
    start = hours.next_start(at(2026, 3, 29, 0, 30))
    assert start is not None
    assert (start.hour, start.minute) == (3, 30)


def test_next_start() -> None:
    assert HOURS.next_start(at(2026, 12, 7, 12)) == at(2026, 12, 7, 19)  # Monday noon -> Monday 19:00
    assert HOURS.next_start(at(2026, 12, 8, 9)) == at(2026, 12, 8, 19)
    assert HOURS.next_start(at(2026, 12, 11, 20)) == at(2026, 12, 12, 0)  # Friday evening -> Saturday
    assert RenderingHours().next_start(at(2026, 12, 7, 12)) is None


def test_settings_round_trip_and_bad_input() -> None:
    raw = HOURS.to_json()
    assert raw["days"]["mon"] == [["19:00", "08:00"]]
    assert raw["days"]["sat"] == [["00:00", "24:00"]]
    assert RenderingHours.from_json(raw) == HOURS
    assert RenderingHours.from_json({"days": {"sun": [["00:00", "00:00"]]}}).days[6] == [Window(0, 1440)]
    for bad, message in [
        ([], "must be an object"),
        ({"days": {"moonday": []}}, "unknown day"),
        ({"days": {"mon": [["25:00", "08:00"]]}}, "not a time"),
        ({"days": {"mon": [["24:00", "08:00"]]}}, "only an end time"),
        ({"days": {"mon": [["10:00", "10:00"]]}}, "empty"),
        ({"days": {"mon": [["10:00"]]}}, "window"),
        ({"days": {"mon": [["01:00", "02:00"]] * 9}}, "at most"),
    ]:
        with pytest.raises(HoursError, match=message):
            RenderingHours.from_json(bad)
    assert "Mon 19:00–08:00" in HOURS.summary()


@pytest.mark.parametrize(
    ("always", "read"),
    [(True, True), (False, False), ("false", False), ("FALSE", False), ("No", False), ("0", False),
     ("true", True), (" Yes ", True), ("1", True), (1, True), (0, False)],
)  # fmt: skip
def test_always_takes_the_yes_and_no_a_person_writes(always: object, read: bool) -> None:
    """From an audit: "always": "false" (a string) was read as true, so the artist's windows were ignored."""
    assert RenderingHours.from_json({"always": always, "days": {"mon": [["19:00", "08:00"]]}}).always is read


def test_a_bad_always_is_an_error_or_skipped() -> None:
    with pytest.raises(HoursError, match="neither true nor false"):
        RenderingHours.from_json({"always": "maybe"})
    skipped: list[str] = []
    hours = RenderingHours.from_json({"always": "maybe", "days": {"mon": [["19:00", "08:00"]]}}, skipped=skipped)
    assert hours.always is False and hours.days[0] == [Window(19 * 60, 8 * 60)]
    assert len(skipped) == 1 and "'always'" in skipped[0]


def test_skipping_keeps_the_good_windows() -> None:
    raw = {"days": {"mon": [["19:00", "08:00"], ["25:00", "26:00"]], "moonday": [], "tue": "evenings",
                    "sat": [["00:00", "24:00"]]}}  # fmt: skip
    skipped: list[str] = []
    hours = RenderingHours.from_json(raw, skipped=skipped)
    assert hours.days[0] == [Window(19 * 60, 8 * 60)] and hours.days[5] == [Window(0, DAY_MINUTES)]
    assert len(skipped) == 3 and "not a time" in skipped[0] and "moonday" in skipped[1] and "tue" in skipped[2]
    with pytest.raises(HoursError, match="not a time"):  # strict without `skipped` (--hours, the dialog)
        RenderingHours.from_json(raw)

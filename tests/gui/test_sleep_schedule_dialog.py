"""The wrangler's sleep-schedule dialog of the Workers tab round-trips a schedule and names bad fields."""

from __future__ import annotations

import pytest

from app.ui.sleep_schedule import ManagerSchedules, SleepScheduleDialog
from services.protocol.farm import SleepSchedule


def test_the_dialog_round_trips_and_names_bad_fields(qtbot) -> None:
    s = SleepSchedule(active=True, days=[0, 2, 4], start="22:00", end="06:00")
    dialog = SleepScheduleDialog("anna-ws", s)
    qtbot.addWidget(dialog)
    assert dialog.schedule() == s
    assert [b.isChecked() for b in dialog.days] == [True, False, True, False, True, False, False]
    dialog.days[6].setChecked(True)
    dialog.end.setText("7")
    dialog._accept()
    assert "end" in dialog.error.text() and dialog.result() == 0
    dialog.end.setText("07:30")
    dialog._accept()
    assert dialog.result_schedule == SleepSchedule(active=True, days=[0, 2, 4, 6], start="22:00", end="07:30")


async def test_without_a_manager_address_it_says_where_schedules_live() -> None:
    with pytest.raises(ValueError, match="Manager address"):
        await ManagerSchedules(lambda: ("", "t")).get("w1")

"""The wrangler's sleep schedule of one worker: edited in the Workers tab, kept and evaluated by its Manager."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import ValidationError

from app.qt import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QWidget,
    plain_label,
)
from services.protocol.farm import SleepSchedule
from services.protocol.server_client import segment

API_PREFIX = "/api/v1"
DAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SleepScheduleDialog(QDialog):
    def __init__(self, worker_name: str, schedule: SleepSchedule, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Sleep schedule of {worker_name}")
        form = QFormLayout(self)
        self.active = QCheckBox("Use this schedule")
        form.addRow(self.active)
        days = QHBoxLayout()
        self.days = [QCheckBox(name) for name in DAY_SHORT]
        for box in self.days:
            days.addWidget(box)
        form.addRow("Sleeps on", days)
        self.start = QLineEdit()
        self.end = QLineEdit()
        form.addRow("From", self.start)
        form.addRow("Until", self.end)
        form.addRow(QLabel("In the Manager's local time; an end before the start runs past midnight. The worker "
                           "finishes its task before it sleeps."))  # fmt: skip
        self.error = plain_label(QLabel(""))
        self.error.setStyleSheet("color: #b00020")
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.set_schedule(schedule)
        self.result_schedule = schedule

    def set_schedule(self, s: SleepSchedule) -> None:
        self.active.setChecked(s.active)
        for i, box in enumerate(self.days):
            box.setChecked(i in s.days)
        self.start.setText(s.start)
        self.end.setText(s.end)

    def schedule(self) -> SleepSchedule:
        """As entered; raises pydantic's ValidationError naming the field."""
        return SleepSchedule(
            active=self.active.isChecked(),
            days=[i for i, box in enumerate(self.days) if box.isChecked()],
            start=self.start.text().strip(),
            end=self.end.text().strip(),
        )

    def _accept(self) -> None:
        try:
            self.result_schedule = self.schedule()
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
            self.error.setText(f"Check: {fields} (times as HH:MM)")
            return
        self.accept()


class ManagerSchedules:
    """Reads and writes sleep schedules at the Manager, with the user's Server token (wranglers may write)."""

    def __init__(self, endpoint: Callable[[], tuple[str, str]]) -> None:
        self.endpoint = endpoint  # () -> (manager URL, token)

    def _url(self, worker_id: str) -> tuple[str, dict[str, str]]:
        url, token = self.endpoint()
        if not url:
            raise ValueError("no Manager address set (Settings): sleep schedules live on the Manager")
        return f"{url.rstrip('/')}{API_PREFIX}/workers/{segment(worker_id)}/sleep-schedule", {
            "Authorization": f"Bearer {token}"
        }

    async def get(self, worker_id: str) -> SleepSchedule:
        url, headers = self._url(worker_id)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(url, headers=headers)
        r.raise_for_status()
        return SleepSchedule.model_validate(r.json())

    async def put(self, worker_id: str, schedule: SleepSchedule) -> None:
        url, headers = self._url(worker_id)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.put(url, headers=headers, json=schedule.model_dump(mode="json"))
        if r.status_code == 403:
            raise PermissionError("only wranglers and admins may change sleep schedules")
        r.raise_for_status()

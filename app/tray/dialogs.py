"""The tray's two dialogs: rendering hours (per weekday windows) and settings (Manager, name, limits, secret)."""

from __future__ import annotations

import re

from app.qt import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    plain_label,
)
from app.tray.hours import DAYS, HoursError, RenderingHours
from app.tray.limits import (
    AWAY_MINUTES_MAX,
    AWAY_MINUTES_MIN_SHOWN,
    RENDER_THREADS_MAX,
    tags_problem,
    valid_manager_url,
    valid_worker_name,
)
from app.tray.settings import TraySettings

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class HoursDialog(QDialog):
    """One line per weekday: windows like "19:00-24:00, 00:00-08:00"; an end before the start crosses midnight."""

    def __init__(self, hours: RenderingHours, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Rendering hours")
        layout = QVBoxLayout(self)
        self.always = QCheckBox("Render at any time")
        layout.addWidget(self.always)
        form = QFormLayout()
        self.days: list[QLineEdit] = []
        for name in DAY_NAMES:
            edit = QLineEdit()
            edit.setPlaceholderText("none (e.g. 19:00-08:00, or 00:00-24:00 for all day)")
            self.days.append(edit)
            form.addRow(name, edit)
        layout.addLayout(form)
        preset = QPushButton("Weekday evenings and weekends")
        preset.clicked.connect(lambda: self.set_hours(RenderingHours.after_hours()))
        layout.addWidget(preset)
        self.error = plain_label(QLabel(""))
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        layout.addWidget(QLabel("Times are this computer's local time; a window ending before it starts runs "
                                "past midnight into the next day."))  # fmt: skip
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.always.toggled.connect(self._enable_days)
        self.set_hours(hours)
        self.result_hours = hours

    def _enable_days(self, always: bool) -> None:
        for e in self.days:
            e.setEnabled(not always)

    def set_hours(self, hours: RenderingHours) -> None:
        raw = hours.to_json()["days"]
        for i, key in enumerate(DAYS):
            self.days[i].setText(", ".join(f"{a}-{b}" for a, b in raw[key]))
        self.always.setChecked(hours.always)
        for e in self.days:
            e.setEnabled(not hours.always)

    def hours(self) -> RenderingHours:
        """The hours as typed; raises HoursError naming the day."""
        days: dict[str, list[list[str]]] = {}
        for key, edit, name in zip(DAYS, self.days, DAY_NAMES, strict=True):
            windows: list[list[str]] = []
            for part in filter(None, (p.strip() for p in edit.text().split(","))):
                pieces = [p.strip() for p in re.split(r"[-–]", part)]
                if len(pieces) != 2:
                    raise HoursError(f"{name}: {part!r} is not a window like 19:00-08:00")
                windows.append(pieces)
            days[key] = windows
        try:
            return RenderingHours.from_json({"always": self.always.isChecked(), "days": days})
        except HoursError as exc:
            key = str(exc).split(":", 1)[0]
            name = DAY_NAMES[DAYS.index(key)] if key in DAYS else ""
            raise HoursError(f"{name}{str(exc)[len(key) :]}" if name else str(exc)) from None

    def _accept(self) -> None:
        try:
            self.result_hours = self.hours()
        except HoursError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


class SettingsDialog(QDialog):
    def __init__(self, settings: TraySettings, secret_known: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tablao tray settings")
        self.settings = settings
        form = QFormLayout(self)
        self.manager = QLineEdit(settings.manager_url)
        self.manager.setPlaceholderText("http://manager.studio.lan:8081")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("kept in the keyring" if secret_known else "the farm's registration secret")
        self.name = QLineEdit(settings.worker_name)
        self.tags = QLineEdit(settings.tags)
        self.threads = QSpinBox()
        self.threads.setRange(0, RENDER_THREADS_MAX)
        self.threads.setSpecialValueText("all")
        self.threads.setValue(settings.render_threads)
        self.low = QCheckBox("Lower process priority for renders")
        self.low.setChecked(settings.low_priority)
        self.away = QDoubleSpinBox()
        self.away.setRange(AWAY_MINUTES_MIN_SHOWN, AWAY_MINUTES_MAX)
        self.away.setDecimals(2)
        self.away.setSuffix(" min")
        self.away.setValue(settings.away_minutes)
        self.finish = QCheckBox("When I come back, let the current task finish")
        self.finish.setChecked(settings.finish_on_return)
        self.n_started = QCheckBox("Rendering started while I was away")
        self.n_started.setChecked(settings.notify_started)
        self.n_stopped = QCheckBox("Rendering stopped because I came back")
        self.n_stopped.setChecked(settings.notify_stopped)
        self.n_failed = QCheckBox("A task this computer ran failed")
        self.n_failed.setChecked(settings.notify_failed)
        form.addRow("Manager address", self.manager)
        form.addRow("Registration secret", self.secret)
        form.addRow("Worker name", self.name)
        form.addRow("Tags", self.tags)
        form.addRow("CPU threads for renders", self.threads)
        form.addRow("", self.low)
        form.addRow("Away after", self.away)
        form.addRow("", self.finish)
        form.addRow("Notify me when", self.n_started)
        form.addRow("", self.n_stopped)
        form.addRow("", self.n_failed)
        self.error = plain_label(QLabel(""))
        self.error.setStyleSheet("color: #b00020")
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def new_secret(self) -> str:
        return self.secret.text().strip()

    def _accept(self) -> None:
        url = self.manager.text().strip().rstrip("/")
        if url and not valid_manager_url(url):
            self.error.setText("Manager address: an http:// or https:// URL, without a user name, password or '?'")
            return
        name = self.name.text().strip()
        if not valid_worker_name(name):
            self.error.setText("Worker name: 1-64 letters, digits, '.', '_', '@' or '-'")
            return
        tags = self.tags.text().strip()
        if problem := tags_problem(tags):
            self.error.setText(f"Tags, separated by commas: {problem}")
            return
        s = self.settings
        s.manager_url, s.worker_name, s.tags = url, name, tags
        s.render_threads, s.low_priority = self.threads.value(), self.low.isChecked()
        s.away_minutes, s.finish_on_return = self.away.value(), self.finish.isChecked()
        s.notify_started, s.notify_stopped = self.n_started.isChecked(), self.n_stopped.isChecked()
        s.notify_failed = self.n_failed.isChecked()
        self.accept()

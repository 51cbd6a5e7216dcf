"""The embedded-services panel: state, ports, start/stop/restart and recent log lines of the local farm.

Start, Stop and Restart are requests to the farm's supervisor; the row shows what the supervisor reports."""

from __future__ import annotations

import html

from app.embedded import EmbeddedFarm, Service, ServiceState
from app.models.columns import status_colour
from app.qt import (
    QCheckBox,
    QComboBox,
    QFontDatabase,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

STATE_COLOURS = {
    ServiceState.RUNNING: status_colour("completed").name(),
    ServiceState.STARTING: status_colour("queued").name(),
    ServiceState.STOPPING: status_colour("paused").name(),
    ServiceState.CRASHED: status_colour("failed").name(),
}


class ServiceRow(QFrame):
    def __init__(self, farm: EmbeddedFarm, service: Service, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.farm = farm
        self.service = service
        self.name = QLabel(f"<b>{service.name}</b>", self)
        self.name.setMinimumWidth(70)
        self.state = QLabel(self)
        self.state.setObjectName(f"state-{service.name}")
        self.state.setMinimumWidth(150)
        self.where = QLabel(self)
        self.start_button = QPushButton("Start", self)
        self.stop_button = QPushButton("Stop", self)
        self.restart_button = QPushButton("Restart", self)
        self.start_button.clicked.connect(lambda: service.start())
        self.stop_button.clicked.connect(lambda: service.stop())
        self.restart_button.clicked.connect(lambda: service.restart())
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        for w in (self.name, self.state, self.where):
            row.addWidget(w)
        row.addStretch(1)
        for b in (self.start_button, self.stop_button, self.restart_button):
            row.addWidget(b)
        service.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        s = self.service
        colour = STATE_COLOURS.get(s.state, "#777777")
        self.state.setText(f"<span style='color:{colour}'>● {s.describe()}</span>")
        parts = [f"port {s.port}"] if s.port else []
        if s.pid is not None:
            parts.append(f"pid {s.pid}")
        self.where.setText(", ".join(parts))
        alive = s.is_alive()
        self.start_button.setEnabled(not alive)
        self.stop_button.setEnabled(alive)


class ServicesPanel(QWidget):
    def __init__(self, farm: EmbeddedFarm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.farm = farm
        layout = QVBoxLayout(self)
        self.header = QLabel(self)
        layout.addWidget(self.header)
        self.show_header()
        self.rows = [ServiceRow(farm, s, self) for s in farm.services]
        for r in self.rows:
            layout.addWidget(r)
        self.leave = QCheckBox("Leave the local farm running when the app quits", self)
        self.leave.setChecked(farm.leave_running or farm.handle.from_command_line)
        self.leave.setEnabled(not farm.handle.from_command_line)  # not the app's to stop
        self.leave.toggled.connect(lambda on: setattr(farm, "leave_running", on))
        layout.addWidget(self.leave)
        self.which = QComboBox(self)
        for s in farm.services:
            self.which.addItem(f"{s.name} log", s.name)
        self.which.currentIndexChanged.connect(lambda _i: self._show_log())
        layout.addWidget(self.which)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.log, 1)
        for s in farm.services:
            s.line.connect(lambda ln, s=s: self._line(s, ln))
        self._show_log()

    def show_header(self) -> None:
        text = f"Local farm in <code>{html.escape(str(self.farm.data_dir))}</code>"  # rich text: a path is text
        if self.farm.adopted:
            pid = self.farm.handle.supervisor_pid()
            if self.farm.handle.from_command_line:
                text += (
                    f" — <b>adopted</b>: started on the command line (supervisor pid {pid}), it keeps running when "
                    "the app quits; stop it where it was started (Ctrl-C)"
                )
            else:
                text += f" — <b>adopted</b>: it was already running (supervisor pid {pid}) and the app took it over"
        self.header.setText(text)

    def current(self) -> Service:
        name = self.which.currentData()
        return next(s for s in self.farm.services if s.name == name)

    def _show_log(self) -> None:
        self.log.setPlainText("\n".join(self.current().lines))

    def _line(self, service: Service, line: str) -> None:
        if service is self.current():
            self.log.appendPlainText(line)

"""The start-up choice: run a farm on this computer, or connect to one (URL and login, token in the keyring)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.qt import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    plain_label,
)
from app.secrets import NO_KEYRING, secure_keyring
from app.settings import AppSettings


@dataclass
class StartChoice:
    mode: str  # "embedded" or "connect"
    data_dir: Path
    port: int
    workers: int
    server_url: str
    username: str
    password: str
    token: str


class StartDialog(QDialog):
    def __init__(self, settings: AppSettings, default_data_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tablao: choose a farm")
        self.embedded = QRadioButton("Run a farm on this computer", self)
        self.connect_ = QRadioButton("Connect to a farm", self)
        group = QButtonGroup(self)
        group.addButton(self.embedded)
        group.addButton(self.connect_)

        local = QGroupBox(self)
        lf = QFormLayout(local)
        self.data_dir = QLineEdit(settings.data_dir or str(default_data_dir), self)
        self.port = QSpinBox(self)
        self.port.setRange(1024, 65534)
        self.port.setValue(settings.port)
        self.workers = QSpinBox(self)
        self.workers.setRange(0, 64)
        self.workers.setValue(settings.workers)
        lf.addRow("Data folder", self.data_dir)
        lf.addRow("Server port (Manager: +1)", self.port)
        lf.addRow("Local workers", self.workers)

        remote = QGroupBox(self)
        rf = QFormLayout(remote)
        self.server_url = QLineEdit(settings.server_url or "http://127.0.0.1:8470", self)
        self.username = QLineEdit(settings.username, self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.token = QLineEdit(self)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("or paste an API token instead of a password")
        self.server_url.setToolTip(
            "The Server's address. For a farm with several Servers, list them separated by commas: "
            "the app moves to the next when one stops answering."
        )
        rf.addRow("Server URL", self.server_url)
        rf.addRow("User", self.username)
        rf.addRow("Password", self.password)
        rf.addRow("API token", self.token)
        self.keyring_warning = QLabel(NO_KEYRING, self)
        self.keyring_warning.setObjectName("keyring-warning")
        self.keyring_warning.setWordWrap(True)
        self.keyring_warning.setStyleSheet("color: #b07d12;")
        self.keyring_warning.setVisible(not secure_keyring())
        rf.addRow(self.keyring_warning)

        self.error = plain_label(QLabel(self))
        self.error.setStyleSheet("color: #d63a3a;")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.embedded)
        layout.addWidget(local)
        layout.addWidget(self.connect_)
        layout.addWidget(remote)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.embedded.toggled.connect(local.setEnabled)
        self.connect_.toggled.connect(remote.setEnabled)
        (self.connect_ if settings.mode == "connect" else self.embedded).setChecked(True)
        local.setEnabled(self.embedded.isChecked())
        remote.setEnabled(self.connect_.isChecked())

    def choice(self) -> StartChoice:
        return StartChoice(
            mode="embedded" if self.embedded.isChecked() else "connect",
            data_dir=Path(self.data_dir.text().strip()).expanduser(),
            port=self.port.value(),
            workers=self.workers.value(),
            server_url=self.server_url.text().strip().rstrip("/"),
            username=self.username.text().strip(),
            password=self.password.text(),
            token=self.token.text().strip(),
        )

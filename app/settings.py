"""What the app remembers between runs (never secrets: those live in the keyring, see `app.secrets`)."""

from __future__ import annotations

from dataclasses import dataclass

from app.qt import QSettings

ORGANISATION = "Tablao"
APPLICATION = "Tablao"


@dataclass
class AppSettings:
    mode: str = ""  # "" (ask), "embedded" or "connect"
    server_url: str = ""
    username: str = ""
    manager_url: str = ""  # where full task logs are read from
    data_dir: str = ""
    port: int = 8470
    workers: int = 1
    leave_running: bool = False

    @classmethod
    def load(cls) -> AppSettings:
        q = QSettings(ORGANISATION, APPLICATION)
        d = cls()

        def text(key: str, default: str) -> str:
            return str(q.value(key, default) or "")

        def number(key: str, default: int) -> int:
            try:
                return int(str(q.value(key, default)))
            except (TypeError, ValueError):
                return default

        return cls(
            mode=text("mode", d.mode),
            server_url=text("server_url", d.server_url),
            username=text("username", d.username),
            manager_url=text("manager_url", d.manager_url),
            data_dir=text("data_dir", d.data_dir),
            port=number("port", d.port),
            workers=number("workers", d.workers),
            leave_running=text("leave_running", "false") == "true",
        )

    def save(self) -> None:
        q = QSettings(ORGANISATION, APPLICATION)
        q.setValue("mode", self.mode)
        q.setValue("server_url", self.server_url)
        q.setValue("username", self.username)
        q.setValue("manager_url", self.manager_url)
        q.setValue("data_dir", self.data_dir)
        q.setValue("port", self.port)
        q.setValue("workers", self.workers)
        q.setValue("leave_running", "true" if self.leave_running else "false")
        q.sync()

"""The tray's settings (QSettings group "tray") and its secret (the registration secret, in the keyring only)."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import keyring.errors
import platformdirs

from app.qt import QSettings
from app.secrets import secure_keyring
from app.settings import APPLICATION, ORGANISATION
from app.tray.hours import HoursError, RenderingHours

SECRET_SERVICE = "tablao-tray"


def default_name() -> str:
    return (socket.gethostname().split(".")[0] or "workstation")[:64]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tablao")) / "tray-worker"


@dataclass
class TraySettings:
    manager_url: str = ""
    worker_name: str = field(default_factory=default_name)
    tags: str = ""
    render_threads: int = 0  # 0: all CPUs
    low_priority: bool = True
    away_only: bool = False
    away_minutes: float = 10.0
    finish_on_return: bool = False
    start_at_login: bool = False
    notify_started: bool = True
    notify_stopped: bool = True
    notify_failed: bool = True
    hours: RenderingHours = field(default_factory=RenderingHours)

    @classmethod
    def load(cls) -> TraySettings:
        q = QSettings(ORGANISATION, APPLICATION)
        q.beginGroup("tray")
        d = cls()

        def text(key: str, default: str) -> str:
            return str(q.value(key, default) or "")

        def flag(key: str, default: bool) -> bool:
            return text(key, "true" if default else "false") == "true"

        def number(key: str, default: float) -> float:
            try:
                return float(str(q.value(key, default)))
            except (TypeError, ValueError):
                return default

        try:
            hours = RenderingHours.from_json(json.loads(text("hours", "")))
        except (ValueError, HoursError):
            hours = d.hours  # unset or damaged: render any time, as on first start
        out = cls(
            manager_url=text("manager_url", d.manager_url),
            worker_name=text("worker_name", d.worker_name) or d.worker_name,
            tags=text("tags", d.tags),
            render_threads=int(number("render_threads", d.render_threads)),
            low_priority=flag("low_priority", d.low_priority),
            away_only=flag("away_only", d.away_only),
            away_minutes=number("away_minutes", d.away_minutes),
            finish_on_return=flag("finish_on_return", d.finish_on_return),
            start_at_login=flag("start_at_login", d.start_at_login),
            notify_started=flag("notify_started", d.notify_started),
            notify_stopped=flag("notify_stopped", d.notify_stopped),
            notify_failed=flag("notify_failed", d.notify_failed),
            hours=hours,
        )
        q.endGroup()
        return out

    def save(self) -> None:
        q = QSettings(ORGANISATION, APPLICATION)
        q.beginGroup("tray")
        for key in ("manager_url", "worker_name", "tags"):
            q.setValue(key, getattr(self, key))
        q.setValue("render_threads", self.render_threads)
        q.setValue("away_minutes", self.away_minutes)
        for key in (
            "low_priority", "away_only", "finish_on_return", "start_at_login",
            "notify_started", "notify_stopped", "notify_failed",
        ):  # fmt: skip
            q.setValue(key, "true" if getattr(self, key) else "false")
        q.setValue("hours", json.dumps(self.hours.to_json()))
        q.endGroup()
        q.sync()


def save_registration_secret(manager_url: str, secret: str) -> bool:
    """Keep the farm's registration secret in the keyring; False (nothing written anywhere) without one."""
    if not secure_keyring():
        return False
    try:
        keyring.set_password(SECRET_SERVICE, manager_url, secret)
    except keyring.errors.KeyringError:
        return False
    return True


def load_registration_secret(manager_url: str) -> str | None:
    if not manager_url or not secure_keyring():
        return None
    try:
        return keyring.get_password(SECRET_SERVICE, manager_url)
    except keyring.errors.KeyringError:
        return None


def forget_registration_secret(manager_url: str) -> None:
    with contextlib.suppress(keyring.errors.KeyringError):
        keyring.delete_password(SECRET_SERVICE, manager_url)

"""The tray's settings (QSettings group "tray") and its secret (the registration secret, in the keyring only)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import keyring
import keyring.errors

from app.qt import QSettings
from app.secrets import secure_keyring
from app.settings import APPLICATION, ORGANISATION
from app.tray.hours import HoursError, RenderingHours, parse_bool
from app.tray.limits import (
    AWAY_MINUTES_MAX,
    HOURS_MAX_CHARS,
    RENDER_THREADS_MAX,
    TEXT_MAX_CHARS,
    usable_tags,
    valid_away_minutes,
    valid_manager_url,
    valid_render_threads,
    valid_worker_name,
)
from services.protocol.same_address import address_key

log = logging.getLogger(__name__)

SECRET_SERVICE = "tablao-tray"


def default_name() -> str:
    return (socket.gethostname().split(".")[0] or "workstation")[:64]


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

        def damaged(key: str, value: object, default: object, why: str) -> None:
            try:
                shown = repr(value[:60]) + ("..." if len(value) > 60 else "") if isinstance(value, str) else repr(value)
            except ValueError:  # an integer too long to print
                shown = "(a very long number)"
            log.warning("tray setting %s=%s ignored (%s); using %r", key, shown[:100], why, default)

        def text(
            key: str, default: str, valid: Callable[[str], bool] | None = None, max_chars: int = TEXT_MAX_CHARS
        ) -> str:
            value = q.value(key)
            if value is None or (isinstance(value, str) and not value):
                return default
            if not isinstance(value, str):
                damaged(key, value, default, "not text")
            elif len(value) > max_chars:
                damaged(key, value, default, f"longer than {max_chars} characters")
            elif valid is not None and not valid(value):
                damaged(key, value, default, "not a valid value")
            else:
                return value
            return default

        def flag(key: str, default: bool) -> bool:
            value = q.value(key)
            if value is None:
                return default
            got = parse_bool(value)
            if got is None:
                damaged(key, value, default, "neither true nor false")
                return default
            return got

        def number(key: str, default: float, ok: Callable[[float], bool], why: str) -> float:
            value = q.value(key)
            if value is None:
                return default
            try:
                if isinstance(value, bool) or not isinstance(value, (str, int, float)) or len(str(value)) > 40:
                    raise ValueError
                got = float(value)
            except (ValueError, OverflowError):
                damaged(key, value, default, "not a number")
                return default
            if not ok(got):
                damaged(key, value, default, why)
                return default
            return got

        hours = d.hours  # unset or damaged: render any time, as on first start
        raw_hours = text("hours", "", max_chars=HOURS_MAX_CHARS)
        if raw_hours:
            skipped: list[str] = []
            try:
                read = RenderingHours.from_json(json.loads(raw_hours), skipped=skipped)
            except (ValueError, RecursionError, HoursError) as exc:
                damaged("hours", raw_hours, "any time", str(exc) or type(exc).__name__)
            else:
                if skipped and not read.always and not any(read.days.values()):  # nothing good left
                    damaged("hours", raw_hours, "any time", "; ".join(skipped)[:200])
                else:  # one bad window must not cost the artist the good ones
                    hours = read
                    for why in skipped:
                        log.warning("tray setting hours: %s: ignored, the other rendering hours kept", why[:200])
        threads_why = f"not a whole number 0-{RENDER_THREADS_MAX}"
        # a hand edit `tags=gpu, linux` in the ini file reads back as a list of texts
        listed = q.value("tags")
        if isinstance(listed, list) and all(isinstance(t, str) for t in listed):
            raw_tags = ", ".join(listed)
            if len(raw_tags) > TEXT_MAX_CHARS:
                damaged("tags", raw_tags, d.tags, f"longer than {TEXT_MAX_CHARS} characters")
                raw_tags = d.tags
        else:
            raw_tags = text("tags", d.tags)
        tags, refused = usable_tags(raw_tags)
        if refused:
            damaged("tags", raw_tags, tags, f"not tags the worker takes: {', '.join(map(repr, refused))[:120]}")
        out = cls(
            manager_url=text("manager_url", d.manager_url, valid_manager_url),
            worker_name=text("worker_name", d.worker_name, valid_worker_name),
            tags=tags,
            render_threads=int(number("render_threads", d.render_threads, valid_render_threads, threads_why)),
            low_priority=flag("low_priority", d.low_priority),
            away_only=flag("away_only", d.away_only),
            away_minutes=number(
                "away_minutes", d.away_minutes, valid_away_minutes, f"not above 0 and at most {AWAY_MINUTES_MAX:g}"
            ),
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


def secret_key(manager_url: str) -> str:
    """The keyring entry for a Manager: one per Manager however its URL is written ("http://Mgr.lan:80/" is
    "http://mgr.lan")."""
    return address_key(manager_url)


def _old_keys(manager_url: str) -> list[str]:
    """Where versions before secret_key kept it: the URL exactly as given, with or without its slash."""
    bare = manager_url.rstrip("/")
    return [k for k in dict.fromkeys((manager_url, bare, bare + "/")) if bare and k != secret_key(manager_url)]


def save_registration_secret(manager_url: str, secret: str) -> bool:
    """Keep the farm's registration secret in the keyring; False (nothing written anywhere) without one."""
    if not manager_url or not secure_keyring():  # under no Manager it would never be used
        return False
    try:
        keyring.set_password(SECRET_SERVICE, secret_key(manager_url), secret)
    except keyring.errors.KeyringError:
        return False
    return True


def load_registration_secret(manager_url: str) -> str | None:
    if not manager_url or not secure_keyring():
        return None
    try:
        for key in (secret_key(manager_url), *_old_keys(manager_url)):
            if (secret := keyring.get_password(SECRET_SERVICE, key)) is not None:
                return secret
    except keyring.errors.KeyringError:
        return None
    return None


def forget_registration_secret(manager_url: str) -> None:
    for key in (secret_key(manager_url), *_old_keys(manager_url)):
        with contextlib.suppress(keyring.errors.KeyringError):
            keyring.delete_password(SECRET_SERVICE, key)

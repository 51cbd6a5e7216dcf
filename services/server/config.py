"""The Server's configuration: defaults that work on one machine, overridden by environment and flags."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from services.localfarm.layout import DEFAULT_SERVER_PORT, FarmLayout
from services.protocol import cli_args
from services.protocol.token_text import admin_token_problem
from services.server.policy import FarmPolicy
from services.server.webhook_settings import WebhookSettings

DEFAULT_PORT = DEFAULT_SERVER_PORT
T = TypeVar("T")


def load_variables(path: Path) -> dict[str, dict[str, str]]:
    """Read a path-variables file (`{"render_root": {"linux": "/r", "windows": "R:\\\\"}}`), checking its shape;
    ValueError naming the file otherwise (the Manager's --variables takes the same, services/protocol/cli_args.py)."""
    return cli_args.path_variables(path)


def _from_env(name: str, convert: Callable[[str], T]) -> T | None:
    """Environment variable `name` through one of cli_args' checkers (None when unset or blank); a bad value is
    a ValueError naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return convert(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def env_int(name: str, *, least: int = 0) -> int | None:
    """The whole number in environment variable `name`, 0 or more (`least` 1: 1 or more)."""
    return _from_env(name, cli_args.positive_int if least >= 1 else cli_args.non_negative_int)


def env_seconds(name: str, *, zero: bool = False) -> float | None:
    """The finite number of seconds in environment variable `name`, above 0 (or 0 too when `zero` means
    something)."""
    return _from_env(name, cli_args.non_negative_float if zero else cli_args.positive_float)


# TABLAO_WEBHOOK_<FIELD>s that may be 0: no wait before the first retry
_WEBHOOK_ZERO_ALLOWED = ("backoff_min",)


def webhook_settings_from_env() -> WebhookSettings:
    """WebhookSettings.from_env, after checking each TABLAO_WEBHOOK_<FIELD> so a bad one is named."""
    for f in fields(WebhookSettings):
        name = f"TABLAO_WEBHOOK_{f.name.upper()}"
        if f.type in ("int", int):
            env_int(name, least=1)
        else:
            env_seconds(name, zero=f.name in _WEBHOOK_ZERO_ALLOWED)
    return WebhookSettings.from_env()


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=lambda: FarmLayout.default().server_dir)
    database_url: str | None = None  # None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    admin_token: str | None = None  # preset admin token (TABLAO_ADMIN_TOKEN)
    lease_seconds: float = 60.0  # a Manager silent this long loses its assigned tasks
    event_retention_seconds: float = 24 * 3600.0
    max_body_bytes: int = 8 * 1024 * 1024
    # limits on load: None for no limit (TABLAO_MAX_TASKS_PER_JOB, TABLAO_MAX_ACTIVE_JOBS_PER_USER,
    # TABLAO_MAX_UNFINISHED_TASKS_PER_USER)
    max_tasks_per_job: int | None = 1_000_000
    max_active_jobs_per_user: int | None = 1_000
    max_unfinished_tasks_per_user: int | None = 5_000_000
    # worker rows one Manager may have here (TABLAO_MAX_WORKERS_PER_MANAGER; store/worker_limit.py): twice a
    # Manager's own default limit of workers, room for the ghosts of a reset store
    max_workers_per_manager: int | None = 20_000
    login_token_days: float = 30.0  # tokens made by logging in expire after this long
    # failed logins or bad tokens a client address (or, for logins, a user name) may have before it must
    # wait, 1 s then twice as long after each further failure, up to 5 minutes (TABLAO_AUTH_FREE_FAILURES)
    auth_free_failures: int = 10
    sweep_interval: float = 5.0
    # workers' utilisation history: at most one sample per worker this often, kept this long
    # (TABLAO_UTILISATION_SAMPLE_SECONDS)
    utilisation_sample_seconds: float = 30.0
    history_seconds: float = 24 * 3600.0
    # a job still under construction with nothing written to it for this long is a Server's leftover and is
    # removed (store/orphans.py; TABLAO_ORPHAN_SECONDS); its writer touches it every chunk, well under a second
    orphan_seconds: float = 300.0
    # path variables the farm shares, name -> {platform -> value}, as the Managers' `--variables` files give
    # them; published to clients (the Blender add-on checks that files lie under one of them)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    # who may submit which job types, and where outputs may go (docs/security.md)
    policy: FarmPolicy = field(default_factory=FarmPolicy)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)  # calls to the farm's webhooks

    @classmethod
    def from_env(cls, **overrides: object) -> ServerConfig:
        cfg = cls()
        if url := os.environ.get("TABLAO_DATABASE_URL"):
            cfg.database_url = url
        if token := os.environ.get("TABLAO_ADMIN_TOKEN", "").strip():
            # refused at start: a token no client can send (a line break, not ASCII) or one a guess finds
            if problem := admin_token_problem(token):
                raise ValueError(f"TABLAO_ADMIN_TOKEN is not a usable admin token: {problem}")
            cfg.admin_token = token
        if variables := os.environ.get("TABLAO_VARIABLES"):
            try:
                cfg.variables = load_variables(Path(variables))
            except ValueError as exc:
                raise ValueError(f"TABLAO_VARIABLES: {exc}") from exc
        cfg.webhooks = webhook_settings_from_env()
        if (free := env_int("TABLAO_AUTH_FREE_FAILURES")) is not None:
            cfg.auth_free_failures = free
        if (sample := env_seconds("TABLAO_UTILISATION_SAMPLE_SECONDS", zero=True)) is not None:
            cfg.utilisation_sample_seconds = sample
        if (orphan := env_seconds("TABLAO_ORPHAN_SECONDS")) is not None:
            cfg.orphan_seconds = orphan
        for key in (
            "max_tasks_per_job",
            "max_active_jobs_per_user",
            "max_unfinished_tasks_per_user",
            "max_workers_per_manager",
        ):
            name = f"TABLAO_{key.upper()}"
            if (raw := os.environ.get(name)) is not None:
                least = 1 if key == "max_workers_per_manager" else 0  # 0 workers would be no farm
                setattr(cfg, key, env_int(name, least=least) if raw.strip().lower() not in ("", "none") else None)
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        if cfg.database_url is not None:
            cfg.database_url = database_url(cfg.database_url)
        return cfg


_URL_GIVEN = "the database URL (--database-url or TABLAO_DATABASE_URL)"


def database_url(url: str) -> str:
    """A database URL as SQLAlchemy takes it with Tablao's driver: `postgres://` and `postgresql://` (as hosting
    providers and psql write them) are psycopg's; ValueError for a database Tablao does not run on (SQLAlchemy's
    words were "Can't load plugin: sqlalchemy.dialects:postgres" and "No module named 'MySQLdb'")."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"{_URL_GIVEN} is written postgresql://user@host/database (or sqlite:////path/file.sqlite)")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "postgresql+psycopg" or scheme == "sqlite":
        return url
    raise ValueError(
        f"{_URL_GIVEN}: {scheme[:40]}:// is not a database Tablao runs on: PostgreSQL (postgresql://user@host/db) "
        "or SQLite (the default, in --data-dir)"
    )

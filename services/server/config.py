"""The Server's configuration: defaults that work on one machine, overridden by environment and flags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from services.localfarm.layout import DEFAULT_SERVER_PORT, FarmLayout
from services.server.policy import FarmPolicy
from services.server.webhook_settings import WebhookSettings

DEFAULT_PORT = DEFAULT_SERVER_PORT


def load_variables(path: Path) -> dict[str, dict[str, str]]:
    """Read a path-variables file (`{"render_root": {"linux": "/r", "windows": "R:\\\\"}}`), checking its shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read path variables from {path}: {exc}") from exc
    ok = isinstance(data, dict) and all(
        isinstance(name, str)
        and isinstance(table, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in table.items())
        for name, table in data.items()
    )
    if not ok:
        raise ValueError(f"{path}: path variables must map names to {{platform: value}} tables of strings")
    return {name: dict(table) for name, table in data.items()}


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
        if token := os.environ.get("TABLAO_ADMIN_TOKEN"):
            cfg.admin_token = token
        if variables := os.environ.get("TABLAO_VARIABLES"):
            cfg.variables = load_variables(Path(variables))
        cfg.webhooks = WebhookSettings.from_env()
        if free := os.environ.get("TABLAO_AUTH_FREE_FAILURES"):
            cfg.auth_free_failures = int(free)
        if sample := os.environ.get("TABLAO_UTILISATION_SAMPLE_SECONDS"):
            cfg.utilisation_sample_seconds = float(sample)
        if orphan := os.environ.get("TABLAO_ORPHAN_SECONDS"):
            cfg.orphan_seconds = float(orphan)
        for key in ("max_tasks_per_job", "max_active_jobs_per_user", "max_unfinished_tasks_per_user"):
            if (raw := os.environ.get(f"TABLAO_{key.upper()}")) is not None:
                setattr(cfg, key, int(raw) if raw.strip().lower() not in ("", "none") else None)
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg

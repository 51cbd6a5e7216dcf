"""The Server's configuration: defaults that work on one machine, overridden by environment and flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

from services.server.policy import FarmPolicy

DEFAULT_PORT = 8470


def default_data_dir() -> Path:
    return Path(os.environ.get("TABLAO_DATA_DIR") or user_data_dir("tablao", appauthor=False)) / "server"


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None  # None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    admin_token: str | None = None  # preset admin token (TABLAO_ADMIN_TOKEN)
    lease_seconds: float = 60.0  # a Manager silent this long loses its assigned tasks
    event_retention_seconds: float = 24 * 3600.0
    max_body_bytes: int = 8 * 1024 * 1024
    sweep_interval: float = 5.0
    # who may submit which job types, and where outputs may go (docs/security.md)
    policy: FarmPolicy = field(default_factory=FarmPolicy)

    @classmethod
    def from_env(cls, **overrides: object) -> ServerConfig:
        cfg = cls()
        if url := os.environ.get("TABLAO_DATABASE_URL"):
            cfg.database_url = url
        if token := os.environ.get("TABLAO_ADMIN_TOKEN"):
            cfg.admin_token = token
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg

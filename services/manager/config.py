"""The Manager's configuration: defaults that work on one machine, overridden by environment and flags."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

DEFAULT_PORT = 8471


def default_data_dir() -> Path:
    return Path(os.environ.get("TABLAO_DATA_DIR") or user_data_dir("tablao", appauthor=False)) / "manager"


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


@dataclass
class ManagerConfig:
    server_url: str
    token: str
    data_dir: Path = field(default_factory=default_data_dir)
    name: str = "manager"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # the farm's worker registration secret; None: read or create <data_dir>/worker-registration.secret
    registration_secret: str | None = None
    # failure handling (DESIGN.md section 2); max_task_failures itself comes with each job from the Server
    blocklist_threshold: int = 3
    worker_timeout: float = 60.0  # no heartbeat for this long: the worker goes offline, its task is requeued
    # prefetch: enough tasks for the idle workers plus this margin (None: one per awake worker, >= 2, or more
    # when the workers finish tasks quickly: as many as they take in `prefetch_seconds`)
    prefetch_margin: int | None = None
    prefetch_seconds: float = 0.5
    claim_retry: float = 1.0  # pause after a claim that found nothing and did not wait (a Server without long polling)
    claim_wait: float = 10.0  # long polling: how long the Server may hold a claim until something is runnable
    claim_max: int = 200  # tasks per claim: a big answer holds the event loop while it is stored
    push_interval: float = 0.05  # gather updates this long before sending a batch upstream
    batch_max_updates: int = 300  # small batches let claims in between (one request at a time)
    backoff_max: float = 5.0  # cap of the exponential back-off while the Server is away
    keepalive: float = 10.0  # an empty batch at least this often renews leases and reports workers
    log_keep_attempts: int = 3  # full task logs kept per task: the last N hand-outs
    max_body_bytes: int = 8 * 1024 * 1024
    max_output_bytes: int = 32 * 1024 * 1024
    retry_after: float = 2.0  # suggested delay of a 204 "no task"
    client_token_cache_seconds: float = 60.0
    # path variables: name -> {platform -> value}; render_root defaults to <data_dir>/render
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    # CA certificates to verify an https Server (None: TABLAO_CA_BUNDLE, else the system's)
    ca_bundle: str | None = None

    def registration_secret_file(self) -> Path:
        return self.data_dir / "worker-registration.secret"

    def resolved_variables(self, platform: str) -> dict[str, str]:
        table = {"render_root": {current_platform(): str(self.data_dir / "render")}}
        table.update(self.variables)
        out: dict[str, str] = {}
        for name, by_platform in table.items():
            value = by_platform.get(platform, by_platform.get("all"))
            if value is None and len(by_platform) == 1:
                value = next(iter(by_platform.values()))
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_env(cls, server_url: str, token: str, **overrides: object) -> ManagerConfig:
        cfg = cls(server_url=server_url, token=token)
        if secret := os.environ.get("TABLAO_WORKER_REGISTRATION_SECRET"):
            cfg.registration_secret = secret
        for env, key in (
            ("TABLAO_WORKER_TIMEOUT", "worker_timeout"),
            ("TABLAO_BLOCKLIST_THRESHOLD", "blocklist_threshold"),
        ):
            if raw := os.environ.get(env):
                setattr(cfg, key, type(getattr(cfg, key))(raw))
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg

"""The Manager's configuration: defaults that work on one machine, overridden by environment and flags."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.localfarm.layout import DEFAULT_SERVER_PORT, FarmLayout
from services.protocol import cli_args, platforms
from services.protocol.path_mapping import PathMapping, derive_path_mappings
from services.protocol.token_text import registration_secret_problem

DEFAULT_PORT = DEFAULT_SERVER_PORT + 1


def _platform_key(name: str) -> str:
    """A platform name as the variable tables key it (`darwin` and `macos` are one platform)."""
    try:
        return platforms.normalize(name).value
    except ValueError:
        return name  # "all", or a name the farm does not know: matched as written


@dataclass
class ManagerConfig:
    server_url: str
    token: str
    data_dir: Path = field(default_factory=lambda: FarmLayout.default().manager_dir)
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
    batch_max_updates: int = 300  # a batch is one write transaction at the Server: a big one holds up claims
    backoff_max: float = 5.0  # cap of the exponential back-off while the Server is away
    keepalive: float = 10.0  # an empty batch at least this often renews leases and reports workers
    log_keep_handouts: int = 3  # full task logs kept per task: the last N hand-outs
    # characters of one hand-out's log kept (None: all): past it the middle is left out (log_cap.py); a task
    # printing without end filled the disk (TABLAO_MAX_TASK_LOG_MB)
    max_task_log_chars: int | None = 256 * 2**20
    # days the full log of a task that left this Manager is kept after its newest line (None: for ever):
    # nothing else deleted them, and a busy Manager's disk filled over weeks (log_retention.py, TABLAO_TASK_LOG_DAYS)
    task_log_days: int | None = 30
    max_body_bytes: int = 8 * 1024 * 1024
    retry_after: float = 2.0  # suggested delay of a 204 "no task"
    # a client token the Server confirmed is trusted this long without asking again: the bound on how long a
    # token revoked at the Server still works here while the Server is reachable
    client_token_cache_seconds: float = 5.0
    # while the Server is away, tokens it confirmed before are still trusted, but only if confirmed within
    # this long: a token revoked during the outage works here at most this long after its last confirmation
    client_token_offline_seconds: float = 300.0
    auth_free_failures: int = 10  # wrong registration secrets or worker secrets per address before back-off
    # workers registered here at once (None: no limit): everyone with the registration secret may register, and
    # each is a record the Manager keeps in memory and reports to the Server (TABLAO_MAX_WORKERS)
    max_workers: int | None = 10_000
    # path variables: name -> {platform -> value}; render_root defaults to <data_dir>/render
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    # by worker platform: the variables table they were made from, its path mapping rules and resolved variables
    # (every hand-out carries both; making them for each one cost the Manager 5 % of its CPU on no-op tasks)
    _by_platform: dict[str, tuple[object, list[PathMapping], dict[str, str]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # CA certificates to verify an https Server (None: TABLAO_CA_BUNDLE, else the system's)
    ca_bundle: str | None = None
    # where the Server's users (the app) reach this Manager for full task logs; told to the Server, which tells
    # the app. None: learned from the address it listens on (cli.py), e.g. http://render-a.lan:8471
    public_url: str | None = None

    def registration_secret_file(self) -> Path:
        return self.data_dir / "worker-registration.secret"

    def variable_table(self) -> dict[str, dict[str, str]]:
        table = {"render_root": {platforms.current().value: str(self.data_dir / "render")}}
        table.update(self.variables)
        return table

    def path_mappings(self, platform: str) -> list[PathMapping]:
        """OpenJD path mapping rules for a worker on `platform`, from the same variables (protocol/path_mapping)."""
        return self._for_platform(platform)[0]

    def resolved_variables(self, platform: str) -> dict[str, str]:
        """Each path variable's value for a worker on `platform` (a copy: callers may change it)."""
        return dict(self._for_platform(platform)[1])

    def _for_platform(self, platform: str) -> tuple[list[PathMapping], dict[str, str]]:
        """Made once per variables table (a replaced table is made anew)."""
        cached = self._by_platform.get(platform)
        if cached is None or cached[0] is not self.variables:
            cached = self._by_platform[platform] = (
                self.variables,
                self._mapping_rules(platform),
                self._resolve(platform),
            )
        return cached[1], cached[2]

    def _mapping_rules(self, platform: str) -> list[PathMapping]:
        try:
            return derive_path_mappings(self.variable_table(), platform)
        except ValueError:  # a platform the farm does not know: its paths are left as written
            return []

    def _resolve(self, platform: str) -> dict[str, str]:
        table = self.variable_table()
        platform = _platform_key(platform)
        out: dict[str, str] = {}
        for name, raw in table.items():
            by_platform = {_platform_key(k): v for k, v in raw.items()}
            value = by_platform.get(platform, by_platform.get("all"))
            if value is None and len(by_platform) == 1:
                value = next(iter(by_platform.values()))
            if value is not None:
                out[name] = value
        return out

    def listening_url(self, port: int, https: bool) -> str:
        """The address clients reach when nobody named one: the host listened on, or this machine's name."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        return f"{'https' if https else 'http'}://{host}:{port}"

    @classmethod
    def from_env(cls, server_url: str, token: str, **overrides: object) -> ManagerConfig:
        """Defaults, then the environment, then `overrides` (the flags; None: not given).

        Raises ValueError naming the environment variable when one holds a bad value."""
        cfg = cls(server_url=server_url, token=token)
        if secret := os.environ.get("TABLAO_WORKER_REGISTRATION_SECRET", "").strip():
            # surrounding white space stripped as the workers strip theirs; a NUL no worker could ever send
            if problem := registration_secret_problem(secret):
                raise ValueError(f"TABLAO_WORKER_REGISTRATION_SECRET is not a usable registration secret: {problem}")
            cfg.registration_secret = secret
        for env, key, convert in _ENVIRONMENT:
            if raw := os.environ.get(env):
                try:
                    setattr(cfg, key, convert(raw))
                except ValueError as exc:
                    raise ValueError(f"{env}: {exc}") from None
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg


def _megabytes(count: int | None) -> int | None:
    """A size given in MB (2^20), as the characters it allows (None: no limit)."""
    if count is not None and count > 2**20:
        raise cli_args.BadValue(f"{count} is over 1048576 MB (1 TB)")
    return None if count is None else count * 2**20


# environment variable, field, conversion (by the field's type, with its range: each raises ValueError)
_ENVIRONMENT: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("TABLAO_WORKER_TIMEOUT", "worker_timeout", cli_args.positive_float),
    ("TABLAO_BLOCKLIST_THRESHOLD", "blocklist_threshold", cli_args.positive_int),
    ("TABLAO_AUTH_FREE_FAILURES", "auth_free_failures", cli_args.non_negative_int),
    ("TABLAO_MAX_WORKERS", "max_workers", cli_args.limit),
    ("TABLAO_MAX_TASK_LOG_MB", "max_task_log_chars", lambda text: _megabytes(cli_args.limit(text))),
    ("TABLAO_TASK_LOG_DAYS", "task_log_days", cli_args.limit),
    ("TABLAO_MANAGER_PUBLIC_URL", "public_url", cli_args.http_url),
)

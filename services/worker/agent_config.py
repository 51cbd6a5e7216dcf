"""The Worker agent's settings (AgentConfig), and what it says of itself when it signs on or registers."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from services.protocol import platforms
from services.protocol.states import Unavailability
from services.protocol.worker_api import RegisterRequest, SignOnRequest
from services.protocol.worker_client import Unauthorized, WorkerClient
from services.worker import capabilities, credentials
from services.worker.runners import Programs, available_task_types, prepare_checks
from services.worker.software import software_versions
from services.worker.task_policy import TaskPolicy

log = logging.getLogger("tablao.worker")


class FatalError(Exception):
    """Something only a person can fix (a refused registration secret); the worker exits with a message."""


@dataclass(slots=True)
class AgentConfig:
    manager_url: str
    data_dir: Path
    name: str = field(default_factory=socket.gethostname)
    tags: list[str] = field(default_factory=list)
    # NAME=VALUE pairs added to the measured capabilities (OpenJD host requirements, capabilities.py)
    host_attributes: tuple[str, ...] = ()
    host_amounts: tuple[str, ...] = ()
    task_types: list[str] | None = None  # None: every type whose programs were found
    registration_secret: str | None = None
    credentials_in_keyring: bool = False  # the tray's worker: the OS keychain, not worker.json
    programs: Programs = field(default_factory=Programs)
    heartbeat_interval: float = 5.0
    may_i_run_interval: float = 2.0
    poll_wait: float = 10.0  # long-polling: how long an idle request may wait at the Manager
    batch_delay: float = 0.5
    flush_interval: float = 0.25
    grace_seconds: float = 0.5
    # stopping must take under a second or two: what is not delivered by then stays in the durable buffer for the
    # next start, and a worker that does not sign off is marked offline by the Manager's timeout
    shutdown_flush_seconds: float = 0.5
    sign_off_seconds: float = 0.3
    # what tasks may see and touch (environment, output roots, secrets out of reach, Blender scripts)
    task_policy: TaskPolicy = field(default_factory=TaskPolicy)
    # CA certificates to verify an https Manager (None: TABLAO_CA_BUNDLE, else the system's)
    ca_bundle: str | None = None
    # ask for the next task while one runs, so it starts the moment the running one ends (prefetcher.py)
    prefetch: bool = True


def unavailability(text: str | None) -> Unavailability | None:
    try:
        return Unavailability(text or "paused-by-user")
    except ValueError:
        return Unavailability.PAUSED_BY_USER


def platform_name() -> str:
    return platforms.current().value  # the farm's name: linux, windows, macos


async def sign_on_request(cfg: AgentConfig) -> SignOnRequest:
    """What the worker tells the Manager at sign-on: the task types whose programs it has, its software."""
    prepare_checks()
    programs, versions = cfg.programs, await software_versions(cfg.programs)
    offered = available_task_types(programs)
    if cfg.task_types is not None:
        missing = [t for t in cfg.task_types if t not in offered]
        for t in missing:
            log.warning("task type %r needs a program this worker does not have; not offered", t)
        offered = [t for t in cfg.task_types if t in offered]
    if not offered:
        raise FatalError("this worker can run none of the requested task types")
    return SignOnRequest(
        name=cfg.name,
        platform=platform_name(),
        task_types=offered,
        tags=cfg.tags,
        software=versions,
        can_restart=True,
        capabilities=capabilities.gather(cfg.host_attributes, cfg.host_amounts),
    )


async def register(cfg: AgentConfig, client: WorkerClient) -> credentials.Credentials:
    """Register with the registration secret; the credentials are stored for the next start."""
    if not cfg.registration_secret:
        raise FatalError(
            "this worker is not registered yet and no registration secret was given "
            "(--registration-secret-file or TABLAO_WORKER_REGISTRATION_SECRET)"
        )
    try:
        answer = await client.register(
            RegisterRequest(registration_secret=cfg.registration_secret, name=cfg.name, platform=platform_name())
        )
    except Unauthorized as exc:
        raise FatalError(f"the Manager refused the registration secret: {exc.detail}") from exc
    creds = credentials.Credentials(cfg.manager_url, answer.worker_id, answer.secret)
    try:
        credentials.save(cfg.data_dir, creds, in_keyring=cfg.credentials_in_keyring)
    except ValueError as exc:
        raise FatalError(str(exc)) from exc
    log.info("registered at %s as worker %s", cfg.manager_url, creds.worker_id)
    return creds

"""The Worker agent's settings (AgentConfig) and the error that only a person can fix (FatalError)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from services.protocol.states import Unavailability
from services.worker.runners import Programs
from services.worker.task_policy import TaskPolicy


class FatalError(Exception):
    """Something only a person can fix (a refused registration secret); the worker exits with a message."""


class SupersededError(FatalError):
    """Another process signed on with this worker's identity (credentials.superseded)."""


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
    may_i_run_interval: float = 2.0  # the may-i-run pace when the Manager answers at once (one that does not wait)
    may_i_run_wait: float = 20.0  # how long a running task's may-i-run waits at the Manager for news (long poll)
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
    # make the prefetched task's first process (held before its program) while the task before runs
    warm_start: bool = True


def unavailability(text: str | None) -> Unavailability | None:
    try:
        return Unavailability(text or "paused-by-user")
    except ValueError:
        return Unavailability.PAUSED_BY_USER

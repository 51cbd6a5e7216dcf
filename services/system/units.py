"""The text of a systemd unit and the content of a launchd plist that run one Tablao service.

Pure functions of a `ServiceSpec`: `tablao service install` writes what they return, and the templates shipped in
packaging/ are made by them too (packaging/make_service_templates.py), so both stay the same.
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ROLES = ("server", "manager", "worker")
STOP_TIMEOUT_S = 60  # the services stop cleanly on SIGTERM well within this; a worker gives its task back first
RESTART_DELAY_S = 5
_INSTANCE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # each of these: fullmatch
_SYSTEMD_SPECIAL = re.compile(r'[\s"\\\'$%;]')
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")  # a name systemd's User= and launchd's UserName take as is
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a unit is one directive a line; a plist's XML takes none of them


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its role, the command that runs `tablao ROLE ...`, where it keeps its data, who runs it."""

    role: str
    argv: tuple[str, ...]  # the whole command line, program first (the bundle's `tablao` or Python + module)
    data_dir: PurePosixPath | Path
    user_scope: bool  # a per-user service (systemd --user, a LaunchAgent) rather than a system one
    instance: str = ""  # a second worker on one machine: tablao-worker-NAME
    run_as: str = ""  # system services only: the account the service runs as
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown service {self.role!r}: choose one of {', '.join(ROLES)}")
        if self.instance and not _INSTANCE.fullmatch(self.instance):
            raise ValueError("--instance: 1-40 lower-case letters, digits and '-', starting with a letter or digit")
        if not PurePosixPath(str(self.data_dir)).is_absolute() and not Path(self.data_dir).is_absolute():
            raise ValueError(f"--data-dir must be an absolute path, not {self.data_dir}")
        if _CONTROL.search(str(self.data_dir)) or any(c in str(self.data_dir) for c in "%$"):
            raise ValueError("--data-dir: a path without line breaks or other control characters, '%' or '$'")
        if self.run_as and not _USER.fullmatch(self.run_as):
            raise ValueError(f"--run-as: {self.run_as!r} is not a user name (letters, digits, '_', '.', '-')")
        if any(_CONTROL.search(a) for a in self.argv):
            raise ValueError("the service's flags must not contain line breaks or other control characters")
        for key, value in self.environment.items():
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) or _CONTROL.search(value):
                raise ValueError(f"environment variable {key!r}: a name of A-Z, 0-9 and '_', a value on one line")

    @property
    def name(self) -> str:
        """tablao-server, tablao-worker, tablao-worker-gpu2, ..."""
        return f"tablao-{self.role}" + (f"-{self.instance}" if self.instance else "")

    @property
    def label(self) -> str:
        """The launchd label: org.tablao.server, org.tablao.worker.gpu2, ..."""
        return f"org.tablao.{self.role}" + (f".{self.instance}" if self.instance else "")


def _systemd_quote(arg: str) -> str:
    """One ExecStart word: quoted where systemd would split or expand it ($ and % are systemd's own expansions)."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if arg and not _SYSTEMD_SPECIAL.search(arg):  # an empty word is quoted too, or it would vanish
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    """A unit that starts at boot (or login, for --user), restarts after a failure and stops with SIGTERM."""
    service = [
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_quote(a) for a in spec.argv),
        f"WorkingDirectory={spec.data_dir}",  # taken as it is: no quotes, no expansions
        "Environment=PYTHONUNBUFFERED=1",
        *(f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in sorted(spec.environment.items())),
        "Restart=on-failure",
        f"RestartSec={RESTART_DELAY_S}",
        # SIGTERM to the service only; it stops its own children (a worker's render) before exiting.
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_S}",
        "UMask=0077",
    ]
    if spec.role == "worker":
        # EX_CONFIG: another process signed on with this worker's identity, or its update buffer is missing or
        # damaged; a person decides, and a restart would only say so again
        service += ["RestartPreventExitStatus=78"]
    if not spec.user_scope:
        service += [f"User={spec.run_as}"] if spec.run_as else []
        service += ["NoNewPrivileges=yes"]
    wanted = "default.target" if spec.user_scope else "multi-user.target"
    return "\n".join([
        "# Written by `tablao service install`; `tablao service remove` undoes it.",
        "[Unit]",
        f"Description=Tablao {spec.role}" + (f" ({spec.instance})" if spec.instance else ""),
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        *service,
        "",
        "[Install]",
        f"WantedBy={wanted}",
        "",
    ])  # fmt: skip


def launchd_plist(spec: ServiceSpec) -> dict[str, Any]:
    """A LaunchAgent (per user) or LaunchDaemon: runs at load, restarted after a failure, SIGTERM to stop."""
    log = str(PurePosixPath(str(spec.data_dir)) / f"{spec.name}.log")
    plist: dict[str, Any] = {
        "Label": spec.label,
        "ProgramArguments": list(spec.argv),
        "WorkingDirectory": str(spec.data_dir),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", **_launchd_worker_environment(spec), **spec.environment},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a failure, not after a clean stop
        "ThrottleInterval": RESTART_DELAY_S,
        "ExitTimeOut": STOP_TIMEOUT_S,  # launchd sends SIGTERM, then SIGKILL after this long
        "ProcessType": "Standard",
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "Umask": 0o077,
    }
    if not spec.user_scope and spec.run_as:
        plist["UserName"] = spec.run_as
    return plist


def _launchd_worker_environment(spec: ServiceSpec) -> dict[str, str]:
    # KeepAlive restarts after any non-zero exit (no RestartPreventExitStatus): a worker another process took the
    # identity of exits 0, or it would be started, and stop at its marker, every few seconds for good
    return {"TABLAO_WORKER_SUPERSEDED_EXIT": "0"} if spec.role == "worker" else {}


def launchd_plist_bytes(spec: ServiceSpec) -> bytes:
    return plistlib.dumps(launchd_plist(spec))

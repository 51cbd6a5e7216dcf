"""The worker's identity at its Manager: `worker.json` (mode 0600) in the data directory, or the OS keyring.

The headless worker keeps the file; the tray's worker (`--credentials keyring`) keeps it in the keychain,
under the service "tablao-worker" and the data directory's path, and never writes it to a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from services.protocol import process_guard

FILE_NAME = "worker.json"
KEYRING_SERVICE = "tablao-worker"


@dataclass(frozen=True, slots=True)
class Credentials:
    manager_url: str
    worker_id: str
    secret: str


def load(data_dir: Path, manager_url: str, *, in_keyring: bool = False) -> Credentials | None:
    """The stored credentials for this Manager, or None (first start, or registered elsewhere)."""
    path = data_dir / FILE_NAME
    try:
        if in_keyring:
            stored = _keyring_get(data_dir)
            if stored is None:
                return None
            raw = json.loads(stored)
        else:
            raw = json.loads(path.read_text(encoding="utf-8"))
        creds = Credentials(str(raw["manager_url"]), str(raw["worker_id"]), str(raw["secret"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); delete it to register again") from exc
    return creds if creds.manager_url.rstrip("/") == manager_url.rstrip("/") else None


def save(data_dir: Path, creds: Credentials, *, in_keyring: bool = False) -> None:
    process_guard.private_dir(data_dir)
    if in_keyring:
        _keyring_set(data_dir, json.dumps(asdict(creds)))
        return
    path = data_dir / FILE_NAME
    tmp = path.with_suffix(".tmp")
    # created 0600 from the start: the secret is never readable by others, not even briefly
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(creds), fh, indent=2)
    tmp.replace(path)


def _account(data_dir: Path) -> str:
    return str(data_dir.resolve())


def _keyring_get(data_dir: Path) -> str | None:
    import keyring
    import keyring.errors

    try:
        return keyring.get_password(KEYRING_SERVICE, _account(data_dir))
    except keyring.errors.KeyringError as exc:
        raise ValueError(f"the system keyring cannot be read ({exc})") from exc


def _keyring_set(data_dir: Path, value: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, _account(data_dir), value)
    except keyring.errors.KeyringError as exc:
        raise ValueError(f"no secure keyring to keep the worker's credentials in ({exc})") from exc

"""The worker's identity at its Manager: `worker.json` (mode 0600) in the data directory, or the OS keyring.

The headless worker keeps the file; the tray's worker (`--credentials keyring`) keeps it in the keychain,
under the service "tablao-worker" and the data directory's path, and never writes it to a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from services.protocol import process_guard, secret_files
from services.protocol.same_address import on_this_machine, same_address
from services.protocol.token_text import token_problem

FILE_NAME = "worker.json"
# written when another process signed on with these credentials (a copied machine): this one then stays down,
# restarted or not, rather than take the identity back and forth; registering anew (a new id) clears it
SUPERSEDED_FILE = "superseded"
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
        # both go in a Basic authorization header: anything else would fail there at every call
        if problem := token_problem(creds.worker_id) or token_problem(creds.secret):
            raise ValueError(f"its worker_id or secret is not usable: {problem}")
    except FileNotFoundError:
        return None
    except _KeyringUnreadable as exc:  # there is no worker.json to blame: the tray's worker keeps none
        raise ValueError(
            f"its credentials are kept only in the system keyring ({where_in_keyring(data_dir)}), which cannot be "
            f"read ({exc}); unlock or install a keyring, or give the registration secret again to register anew"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        if in_keyring:
            raise ValueError(
                f"its credentials in the system keyring ({where_in_keyring(data_dir)}) are damaged ({exc}); delete "
                "that entry to register again"
            ) from exc
        raise ValueError(f"{path} is damaged ({exc}); delete it to register again") from exc
    # the same Manager however its URL is written (`localhost` for `127.0.0.1`, a capital, its default port): the
    # worker registered anew, its old self left offline at the Manager with its sleep schedule and tags
    # and a Manager on this machine's loopback at another port may be the same one (the local farm started with
    # another PORT registered its workers anew each time, the old ones left offline): sign-on tells, and a Manager
    # that does not know them has the worker register again (joining.py)
    known = same_address(creds.manager_url, manager_url) or on_this_machine(creds.manager_url, manager_url)
    return creds if known else None


def save(data_dir: Path, creds: Credentials, *, in_keyring: bool = False) -> None:
    process_guard.private_dir(data_dir)
    if in_keyring:
        _keyring_set(data_dir, json.dumps(asdict(creds)))
        return
    # 0600 from the first byte, synced, then renamed: a crash never leaves a worker without its identity
    secret_files.write_secret(data_dir / FILE_NAME, json.dumps(asdict(creds), indent=2))


class _KeyringUnreadable(Exception):
    """No keyring to read from (none installed, locked, or refused)."""


def _account(data_dir: Path) -> str:
    return str(data_dir.resolve())


def where_in_keyring(data_dir: Path) -> str:
    return f"service {KEYRING_SERVICE!r}, entry {_account(data_dir)!r}"


def _keyring_get(data_dir: Path) -> str | None:
    import keyring
    import keyring.errors

    try:
        return keyring.get_password(KEYRING_SERVICE, _account(data_dir))
    except keyring.errors.KeyringError as exc:
        raise _KeyringUnreadable(str(exc) or type(exc).__name__) from exc


def _keyring_set(data_dir: Path, value: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, _account(data_dir), value)
    except keyring.errors.KeyringError as exc:
        raise ValueError(
            f"no secure keyring to keep the worker's credentials in ({exc}): they were not kept anywhere (never in a "
            "file), so the registration secret must be given again at the next start"
        ) from exc


def mark_superseded(data_dir: Path, worker_id: str) -> None:
    (data_dir / SUPERSEDED_FILE).write_text(worker_id + "\n", encoding="utf-8")


def superseded(data_dir: Path, worker_id: str) -> bool:
    """True if another process signed on as `worker_id` since this data folder last used it."""
    path = data_dir / SUPERSEDED_FILE
    try:
        marked = path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return False
    if marked == worker_id:
        return True
    path.unlink(missing_ok=True)  # of credentials given up since
    return False

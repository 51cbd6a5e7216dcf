"""The worker's identity at its Manager, kept in `worker.json` (mode 0600) in the data directory."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from services.protocol import process_guard

FILE_NAME = "worker.json"


@dataclass(frozen=True, slots=True)
class Credentials:
    manager_url: str
    worker_id: str
    secret: str


def load(data_dir: Path, manager_url: str) -> Credentials | None:
    """The stored credentials for this Manager, or None (first start, or registered elsewhere)."""
    path = data_dir / FILE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        creds = Credentials(str(raw["manager_url"]), str(raw["worker_id"]), str(raw["secret"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); delete it to register again") from exc
    return creds if creds.manager_url.rstrip("/") == manager_url.rstrip("/") else None


def save(data_dir: Path, creds: Credentials) -> None:
    process_guard.private_dir(data_dir)
    path = data_dir / FILE_NAME
    tmp = path.with_suffix(".tmp")
    # created 0600 from the start: the secret is never readable by others, not even briefly
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(creds), fh, indent=2)
    tmp.replace(path)

"""Which of a farm's several Server addresses answered the command-line client last, so its next command starts
there rather than at a Server that hangs (each command would pay for passing it over again).

One small JSON file in the user's state folder (platformdirs), keyed by a digest of the address list as given,
holding the answering address's place in that list and when it was learned: no address (it may carry a user and
password) is written. An entry is kept `REMEMBERED_FOR`, then the first address is asked first again, so a Server
that came back is used again. A file missing, unreadable, corrupt or unwritable costs only the memory: commands
start at the first address, as without it. Written by rename (a command killed mid-write leaves the old file);
two commands writing at once leave one of their answers, either of them right.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from platformdirs import user_state_dir

FILE_NAME = "server-addresses.json"
REMEMBERED_FOR = 15 * 60.0  # seconds; then the first address is tried first again
MAX_FARMS = 32  # address lists remembered: the oldest go first
MAX_BYTES = 64 * 1024  # a bigger file is not this one's: ignored


def state_file() -> Path:
    return Path(user_state_dir("tablao", appauthor=False)) / FILE_NAME


def _key(urls: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(urls).encode("utf-8", "surrogatepass")).hexdigest()


class ServerMemory:
    """The command-line client's memory of the address that answered, per address list."""

    def __init__(self, path: Path | None = None, now: float | None = None) -> None:
        self.path = path if path is not None else state_file()
        self._now = now
        self._recalled: dict[str, int] = {}

    def _time(self) -> float:
        return self._now if self._now is not None else time.time()

    def _read(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as f:
                text = f.read(MAX_BYTES + 1)
            data = json.loads(text) if len(text) <= MAX_BYTES else None
        except (OSError, ValueError, RecursionError):  # RecursionError: nested past what json reads
            return {}
        farms = data.get("farms") if isinstance(data, dict) else None
        return farms if isinstance(farms, dict) else {}

    def recall(self, urls: Sequence[str]) -> int | None:
        """The place in `urls` of the address that answered last, if learned lately."""
        entry = self._read().get(_key(urls))
        if not isinstance(entry, dict):
            return None
        index, at = entry.get("index"), entry.get("at")
        if not (type(index) is int and 0 < index < len(urls) and isinstance(at, (int, float))):  # not a bool
            return None
        if not 0 <= self._time() - at <= REMEMBERED_FOR:  # stale, or from a clock set back
            return None
        self._recalled[_key(urls)] = index
        return index

    def keep(self, urls: Sequence[str], index: int) -> None:
        """Remember that `urls[index]` answered; written only when it differs from what was recalled (the first
        address is the default, so remembering it clears the entry)."""
        key = _key(urls)
        if index == self._recalled.get(key, 0):
            return
        farms = self._read()
        if index == 0:
            farms.pop(key, None)
        else:
            farms[key] = {"index": index, "at": self._time()}
        newest = sorted(farms.items(), key=lambda kv: _at(kv[1]), reverse=True)[:MAX_FARMS]
        with contextlib.suppress(OSError):
            self._write({"farms": dict(newest)})
        self._recalled[key] = index

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            tmp.replace(self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def _at(entry: object) -> float:
    at = entry.get("at") if isinstance(entry, dict) else None
    return float(at) if isinstance(at, (int, float)) else 0.0

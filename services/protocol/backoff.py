"""Back-off for failed credentials: past a few free failures, a key (a client address, a user name) must wait
before its next try, twice as long after each further failure. Both services use it for logins, bad tokens
and registration secrets; answers to a waiting key are 429 with Retry-After."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Hashable


class Backoff:
    """In-memory failure counts per key, forgotten after `forget` seconds without a failure.

    Memory is bounded: past `max_keys` keys the oldest half is dropped (a flood of new keys costs at most
    the free failures of the keys dropped). Thread-safe: the Server's sync routes run in a thread pool.
    """

    def __init__(
        self, free: int = 10, base: float = 1.0, cap: float = 300.0, forget: float = 900.0, max_keys: int = 100_000
    ) -> None:
        self.free, self.base, self.cap, self.forget, self.max_keys = free, base, cap, forget, max_keys
        self._lock = threading.Lock()
        self._keys: dict[Hashable, tuple[int, float, float]] = {}  # key -> (failures, last failure, blocked until)

    def retry_after(self, key: Hashable) -> float:
        """Seconds `key` must still wait before its next attempt (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return 0.0
            _failures, last, until = entry
            if now - last > self.forget:
                del self._keys[key]
                return 0.0
            return max(0.0, until - now)

    def failed(self, key: Hashable) -> float:
        """Counts a failure; returns the wait it starts (0 while the key is within its free failures)."""
        now = time.monotonic()
        with self._lock:
            failures, last, _ = self._keys.get(key, (0, now, now))
            if now - last > self.forget:
                failures = 0
            failures += 1
            wait = 0.0 if failures <= self.free else min(self.cap, self.base * 2 ** (failures - self.free - 1))
            if len(self._keys) >= self.max_keys and key not in self._keys:
                for old in sorted(self._keys, key=lambda k: self._keys[k][1])[: self.max_keys // 2]:
                    del self._keys[old]
            self._keys[key] = (failures, now, now + wait)
            return wait

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._keys.pop(key, None)


def retry_after_header(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}

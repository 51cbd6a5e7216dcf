"""A warning a Manager can cause with every batch, logged at most once a while per Manager, counting the rest."""

from __future__ import annotations

import time


class NowAndThen:
    """`due(key)` is None while a warning about `key` was logged less than `every` seconds ago (counting that
    one), else how many were held back since the last: log it then, saying so when that is more than none."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[object, tuple[float, int]] = {}  # key -> (when last logged, held back since)

    def due(self, key: object) -> int | None:
        now = time.monotonic()
        last, since = self._last.get(key, (float("-inf"), 0))
        if now - last < self.every:
            self._last[key] = (last, since + 1)
            return None
        self._last[key] = (now, 0)
        return since


def since_note(since: int) -> str:
    return f" ({since} more such batches since the last warning)" if since else ""

"""When to log a lasting trouble again: at once when it starts or changes, then once a minute while it lasts.

A full disk, a database out of reach or a Server that refuses a Manager make every retry fail, every few
seconds or at every worker's request; a line each grows the log with the number of workers and buries the one
line that says what is wrong. The services' loops and request handlers ask `due` before each such line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

EVERY = 60.0  # seconds between two lines about the same trouble


class TroubleLog:
    def __init__(self, every: float = EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._said: tuple[Hashable, float] | None = None  # what was last logged, and when
        self._held = 0  # times it was not due since then
        self.held_back = 0  # how many were not logged before the line `due` last allowed

    def due(self, what: Hashable = None) -> bool:
        """True when a line about `what` is to be logged now: the first, one about something else than the last,
        or a minute after the last. Each False is counted in the next True's `held_back`."""
        now = self._clock()
        said = self._said
        if said is None or said[0] != what or now - said[1] >= self.every:
            self._said, self.held_back, self._held = (what, now), self._held, 0
            return True
        self._held += 1
        return False

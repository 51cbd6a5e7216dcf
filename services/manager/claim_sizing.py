"""How many tasks, of which kinds, the Manager claims from the Server: enough for its idle workers plus a margin.

The margin keeps a next task at hand for every worker and, with short tasks, enough for the next
`prefetch_seconds` at the recent hand-out rate, so one claim (a write transaction at the Server) brings many.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence

from services.manager.config import ManagerConfig
from services.manager.model import WorkerState
from services.manager.scheduler import ReadyQueue
from services.protocol.link import ClaimRequest

HANDOUT_WINDOW = 2.0  # seconds over which the hand-out rate is measured for the prefetch margin
HANDOUT_RATE_MAX = 2000  # hand-outs remembered; beyond 1,000 per second the margin stops growing


class ClaimSizer:
    def __init__(self, config: ManagerConfig) -> None:
        self.config = config
        self._recent: deque[float] = deque(maxlen=HANDOUT_RATE_MAX)

    def handed_out(self) -> None:
        self._recent.append(time.monotonic())

    def request(self, available: Sequence[WorkerState], ready: ReadyQueue) -> ClaimRequest | None:
        """What to ask the Server for: enough for the idle workers plus a margin, of the kinds they run."""
        if not available:
            return None
        idle = sum(1 for w in available if w.current_task_id is None)
        margin = self.config.prefetch_margin
        if margin is None:
            # a next task at hand for every worker; with short tasks, enough for the next prefetch_seconds, so
            # one claim brings many (each claim is a write transaction at the Server)
            margin = max(2, len(available), math.ceil(self.handout_rate() * self.config.prefetch_seconds))
        # tasks no worker here meets wait without filling the prefetch (up to one claim's worth of them)
        waiting = min(sum(1 for t in ready if t.unmeetable), self.config.claim_max)
        capacity = idle + margin - len(ready) + waiting
        if capacity <= 0:
            return None
        if idle <= len(ready) and capacity < max(1, margin // 2):
            # nobody is waiting: let the shortfall grow to half the margin, so one claim brings several
            # tasks instead of one claim per finished task (claims cost the Server a write transaction)
            return None
        capacity = min(capacity, self.config.claim_max)
        types = sorted(set().union(*(w.task_types for w in available)))
        tags = sorted(set().union(*(w.tags for w in available)))
        return ClaimRequest(capacity=capacity, task_types=types, tags=tags)

    def handout_rate(self) -> float:
        """Hand-outs per second over the last HANDOUT_WINDOW seconds."""
        recent = self._recent
        cutoff = time.monotonic() - HANDOUT_WINDOW
        while recent and recent[0] < cutoff:
            recent.popleft()
        return len(recent) / HANDOUT_WINDOW

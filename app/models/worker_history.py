"""A worker's utilisation series in the client store, completed with the history the Server keeps (a day).

Live samples arrive with worker-updated events while the app runs; the past comes from
`GET /workers/{id}/utilisation` when a worker is first shown, and both are merged by sample time (the Server's
samples are a thinned copy of the same heartbeats, so equal times are the same sample). No Qt here.
"""

from __future__ import annotations

from collections import deque

from app.models.store import ClientStore, Sample
from services.protocol.server_client import ServerClient
from services.protocol.workers import UtilisationHistory

WATCHED_SAMPLES = 8000  # a shown worker's series: a day of history at 30 s plus hours of live samples


def merge_history(store: ClientStore, history: UtilisationHistory) -> int:
    """Put the Server's samples under the live ones of this worker; returns how many samples it now has."""
    merged: dict[float, Sample] = {
        p.time.timestamp(): Sample(p.time.timestamp(), p.cpu_percent, p.memory_percent, p.gpu_percent)
        for p in history.samples
    }
    for s in store.utilisation.get(history.worker_id, ()):
        merged[s.time] = s
    series = deque((merged[t] for t in sorted(merged)), maxlen=WATCHED_SAMPLES)
    store.utilisation[history.worker_id] = series
    return len(series)


class HistoryLoader:
    """Fetches each worker's history once per session (after that, events keep its series current)."""

    def __init__(self, store: ClientStore, client: ServerClient) -> None:
        self.store = store
        self.client = client
        self.loaded: set[str] = set()

    async def load(self, worker_id: str) -> bool:
        """Load the worker's history unless done already; True when it was loaded now."""
        if worker_id in self.loaded:
            return False
        self.loaded.add(worker_id)  # before the await: a second selection does not fetch it twice
        try:
            history = await self.client.worker_utilisation(worker_id)
        except BaseException:
            self.loaded.discard(worker_id)  # try again at the next selection
            raise
        if worker_id in self.store.workers:  # not forgotten meanwhile
            merge_history(self.store, history)
        return True

"""One Manager token, one Manager: of two Managers started with the same token, the one it was taken from is
refused, saying why.

Each Manager sends the id of its store (made at its first start, kept across restarts) with every call. Two
Managers sharing a token shared its update sequence: each one's batches looked like repeats of the other's and
were dropped unapplied, though acknowledged, so their finished work ran again, and neither log said a word.

A store the Server has not heard from under this token takes the token over (a Manager moved to a new machine, or
started with `--fresh-store`, goes on at once); a store it was taken from is refused with a 409 naming `token`
while the one that took it calls (each Manager calls at least every quarter lease), and may take it back once
that one has been silent a whole lease. The Server logs a takeover from a store heard within the lease.

What a Server process has heard (in memory): with several Servers, two Managers each talking to another Server
are told apart only once they reach the same one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from services.protocol.link import MANAGER_STORE_PATTERN
from services.server.store.errors import Conflict

log = logging.getLogger(__name__)

RETIRED_KEPT = 16  # stores a token was taken from, per Manager


@dataclass
class _Holder:
    store: str
    heard: float
    retired: list[str] = field(default_factory=list)


class ManagerStores:
    def __init__(self, bound: float) -> None:
        self.bound = bound  # seconds: the lease, within which a Manager calls again
        self._lock = threading.Lock()
        self._holders: dict[int, _Holder] = {}

    def check(self, manager_id: int, manager_name: str, store: str | None) -> None:
        """Conflict for a store this Manager's token was taken from (None: an older Manager, not told apart)."""
        if store is None or MANAGER_STORE_PATTERN.fullmatch(store) is None:
            return
        now = time.monotonic()
        with self._lock:
            held = self._holders.get(manager_id)
            if held is None:
                self._holders[manager_id] = _Holder(store, now)
                return
            if store == held.store:
                held.heard = now
                return
            since = now - held.heard
            if store in held.retired and since < self.bound:
                raise Conflict(
                    f"another Manager took over the token of Manager {manager_name!r} (its store {held.store[:8]}…, "
                    f"heard {since:.0f} s ago): stop one of them; each Manager needs a token of its own "
                    "(tablao managers add NAME)",
                    field="token",
                )
            if since < self.bound:
                log.warning(
                    "Manager %r: a Manager with another store (%s…) took over its token from the one heard %.0f s "
                    "ago; if both run, the earlier one is refused", manager_name, store[:8], since,
                )  # fmt: skip
            kept = [s for s in held.retired if s != store][-(RETIRED_KEPT - 1) :]
            held.retired = [*kept, held.store]
            held.store, held.heard = store, now

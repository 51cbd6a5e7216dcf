"""Hand-off to waiting claims: a job's tasks are leased to the Managers waiting for work as the job is stored.

A Manager with idle workers keeps a claim waiting at the Server (long polling). Without a hand-off, that claim
wakes after the job's commit and runs a claim transaction of its own, which is most of the delay between a
task becoming runnable and its command starting. With it, the transaction that makes tasks runnable (a
submitted, resumed or requeued job) also leases them to the claims waiting in this process, and the claims
answer as soon as that transaction commits. Claims waiting in other Server processes, and changes that make
tasks runnable elsewhere (a dependency completing), still reach them the usual way: a look after each commit.

A waiting claim is `open` to offers only while its request waits; during its own looks it is `looking`, so it
never gets tasks from a look and from a hand-off at once. A transaction that offers tasks `reserves` the open
claims it could serve until it has committed (the tasks are `delivered`) or failed (the claim is open again).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from services.protocol.link import ClaimedTask, ClaimRequest


class SlotState(enum.Enum):
    LOOKING = "looking"  # the claim's own look at the queue is running: not open to offers
    OPEN = "open"
    RESERVED = "reserved"  # a transaction is leasing tasks to it
    DELIVERED = "delivered"


@dataclass(eq=False, slots=True)
class WaitingClaim:
    manager_id: int
    request: ClaimRequest
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event  # the claim's wake-up (also set by commits): set when a reservation of it ends
    state: SlotState = SlotState.LOOKING
    tasks: list[ClaimedTask] = field(default_factory=list)


class Dispatcher:
    """The claims waiting in this Server process, oldest first (one per app: tests run several Servers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: list[WaitingClaim] = []

    # --- the claim's side (on the event loop) --------------------------------------------------------------

    @contextlib.contextmanager
    def waiting(self, manager_id: int, request: ClaimRequest, wake: asyncio.Event) -> Iterator[WaitingClaim]:
        """Register a claim for the duration of its request; it starts `looking`."""
        slot = WaitingClaim(manager_id, request, asyncio.get_running_loop(), wake)
        with self._lock:
            self._claims.append(slot)
        try:
            yield slot
        finally:
            with self._lock:
                self._claims.remove(slot)

    def open(self, slot: WaitingClaim) -> None:
        """The claim's look found nothing: offers may come now (its wake-up is left as it is: a commit
        during the look must still wake it)."""
        with self._lock:
            if slot.state == SlotState.LOOKING:
                slot.state = SlotState.OPEN

    async def close(self, slot: WaitingClaim) -> list[ClaimedTask]:
        """Stop taking offers: what was delivered, after waiting out a reservation in progress."""
        while True:
            with self._lock:
                if slot.state in (SlotState.OPEN, SlotState.LOOKING):
                    slot.state = SlotState.LOOKING
                    return []
                if slot.state == SlotState.DELIVERED:
                    tasks, slot.tasks = slot.tasks, []
                    slot.state = SlotState.LOOKING
                    return tasks
                # reserved: the offering transaction ends within milliseconds. Clearing the wake-up may swallow
                # a commit's notice, which is harmless: a claim that gets no tasks here looks next.
                slot.wake.clear()
            await slot.wake.wait()

    # --- the offering transaction's side (any thread) ------------------------------------------------------

    @contextlib.contextmanager
    def offering(
        self,
        accepts: Callable[[WaitingClaim], bool],
        lease: Callable[[WaitingClaim], list[ClaimedTask]],
    ) -> Iterator[None]:
        """Lease tasks to the open claims `accepts` chooses; deliver them when the block (the commit) succeeds.

        `lease` runs in the caller's transaction, oldest claim first; the block must commit that transaction.
        On an error in the block the leases are rolled back with it and the claims are open again.
        """
        with self._lock:
            reserved = [c for c in self._claims if c.state == SlotState.OPEN and accepts(c)]
            for c in reserved:
                c.state = SlotState.RESERVED
        if not reserved:
            yield
            return
        try:
            for c in reserved:
                c.tasks = lease(c)  # a reserved claim's tasks are read only once it is delivered
            yield
        except BaseException:
            self._settle(reserved, committed=False)
            raise
        self._settle(reserved, committed=True)

    def _settle(self, reserved: list[WaitingClaim], *, committed: bool) -> None:
        with self._lock:
            for c in reserved:
                if not committed:
                    c.tasks = []
                c.state = SlotState.DELIVERED if c.tasks else SlotState.OPEN
                with contextlib.suppress(RuntimeError):  # the claim's loop has closed (the Server stopped)
                    c.loop.call_soon_threadsafe(c.wake.set)

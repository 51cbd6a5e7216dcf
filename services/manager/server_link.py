"""The Manager's link to the Server: the claim loop and the sender of the durable update buffer.

While the Server is away both loops back off (exponentially, with jitter) and the Manager keeps working on the
tasks it holds; updates wait in SQLite and leave in order, each batch exactly once by its sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from services.manager import blocklist_sync, log_retention
from services.manager.answer_orders import AnswerOrders
from services.manager.batch_parts import fit_reports, refused_parts
from services.manager.core import ManagerCore
from services.manager.store import outbox, previews
from services.manager.store.db import get_meta, set_meta, transaction
from services.manager.store_health import STORE_ERRORS, StoreHealth
from services.protocol import variable_names
from services.protocol.link import (
    HELD_TASK_IDS_MAX,
    ClaimRequest,
    ClaimResponse,
    UpdateAck,
    UpdateBatch,
    WorkerReport,
)
from services.protocol.manager_client import LinkError, LinkRefused, ManagerClient, ServerBusy
from services.protocol.preview import PREVIEWS_PER_BATCH
from services.protocol.trouble_log import TroubleLog

log = logging.getLogger(__name__)

REPORT_INTERVAL = 3.0
COLLECT_WAIT = 5.0  # seconds a claim that announced instructions waits for the batch that collects them


class ServerLink:
    def __init__(self, core: ManagerCore, client: ManagerClient) -> None:
        self.core = core
        self.client = client
        self.config = core.config
        self.server_up = False
        self._down_said = TroubleLog()  # what the log last said of the Server out of reach or refusing, and when
        self._busy_said = TroubleLog()  # and of its database busy (said once a minute)
        self.lease_seconds = 60.0
        self._last_push = 0.0
        self._last_reports = 0.0
        self._last_renewal = 0.0
        self._reports_left = False  # reports that did not fit the last batch follow in the next ones, at once
        # what the Server refused (422) of the worker reports (by worker id) and blocklist entries, and when
        self._refused: dict[object, float] = {}
        # the names of this Manager's path variables go with each renewal, until a Server refuses the field (an
        # older one, which refuses any field it does not know): then not again until this Manager restarts
        self._say_variables = True
        self._url_sent: str | None = None
        # claims that ended with "instructions", and how many of them a batch built after them has collected: a
        # batch leaves even with nothing to report while some are not (one in flight before may not carry them)
        self._collects = 0
        self._collected = 0
        self._pushed = asyncio.Event()  # set after each batch the Server took
        self.store = StoreHealth(lambda: core.conn, core.config.data_dir)  # whether the store takes writes now
        self._compacted = 0  # queued rows the last merge left, while the Server is away (_compact_queue)
        self.orders = AnswerOrders(core, client, self._backoff)  # what the Server's answers tell this Manager
        # Claims and batches go to the Server side by side: the Server's writers take turns on a lock of their
        # own (db/engine.py), so neither meets SQLite's busy handler, and taking turns here as well left both
        # processes idle half the time, each waiting for the other's answer.

    async def run(self) -> None:
        # a start has news at once: a fresh store's hello, the renewal of the leases its tasks hold, the state of
        # every worker; the first batch used to wait a whole keep-alive period (10 s) before leaving
        self.core.link_wakeup.set()
        # no loop may end alone: the others would go on half-alive (claiming tasks whose leases nobody renews)
        loops = [asyncio.create_task(f(), name=f.__name__) for f in (self._push_loop, self._claim_loop, self._sweep)]
        if (days := self.config.task_log_days) is not None:
            retention = log_retention.run(lambda: self.core.conn, days, self.store)
            loops.append(asyncio.create_task(retention, name="log_retention"))
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            ended = done.pop()
            raise ended.exception() or RuntimeError(f"{ended.get_name()} ended")
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    # --- updates ---------------------------------------------------------------------------------------------

    async def _push_loop(self) -> None:
        failures = 0
        refusals = TroubleLog()
        while True:
            keepalive = self._renew_every()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(keepalive):  # not wait_for, which can lose a cancel on 3.11
                    await self.core.link_wakeup.wait()
            await asyncio.sleep(self.config.push_interval)  # gather updates into one batch
            self.core.link_wakeup.clear()
            try:
                await self.push_pending()
                failures = 0
                self._compacted = 0
            except LinkError as exc:
                failures += 1
                self._went_down(exc)
                await self._compact_queue()
                await asyncio.sleep(max(self._backoff(failures), busy_wait(exc)))
                self.core.link_wakeup.set()  # try again
            except LinkRefused as exc:
                failures += 1
                # the same refusal (by its status: a 429's text changes with its wait) is logged once a minute
                if refusals.due(exc.status_code):
                    log.error("the Server refused an update batch: %s", exc)
                await self._compact_queue()
                await asyncio.sleep(max(self._backoff(failures), exc.retry_after))
                self.core.link_wakeup.set()
            except STORE_ERRORS as exc:
                failures += 1
                self.store.failed(exc, "updates wait")
                await self._renew_leases()
                await asyncio.sleep(self._backoff(failures))
                self.core.link_wakeup.set()

    async def push_pending(self, everything: bool = False) -> int:
        """Send the waiting batch (and whole batches after it), or a keep-alive when one is due; with
        `everything`, all that waits (a shutdown's flush). Returns how many were sent."""
        sent = 0
        conn = self.core.conn
        self.orders.apply_due()
        if get_meta(conn, "synced") is None and outbox.next_batch(conn, 0) is None:
            outbox.new_seq(conn)  # a fresh store says hello with an empty batch first (see _acknowledge)
        while True:
            if sent and not everything and self._collected >= self._collects:
                # what came in while a batch was on its way waits for the next gathering, unless a whole batch
                # is there or instructions wait to be collected: small batches sent back to back cost the
                # Server a write transaction each
                anything, whole = outbox.waiting(conn, self.config.batch_max_updates)
                if not whole:
                    if anything:
                        self.core.link_wakeup.set()
                    return sent
            now = time.monotonic()
            frozen = outbox.next_batch(conn, self.config.batch_max_updates)
            if frozen is None:
                keepalive_due = (
                    self._collected < self._collects or now - self._last_renewal >= self._renew_every() * 0.9
                )
                reports_due = self.core.workers.dirty and (
                    self._reports_left or self.core.workers.news or now - self._last_reports >= REPORT_INTERVAL
                )
                blocklist_due = bool(self.core.blocklist_dirty) and not sent
                if sent or not (keepalive_due or reports_due or blocklist_due or previews.has_unsent(conn)):
                    return sent
                frozen = (outbox.new_seq(conn), [])
            seq, updates = frozen
            collects = self._collects
            # leases are renewed a few times per lease period, not with every batch (updates renew their own)
            renew = now - self._last_renewal >= self._renew_every() * 0.8
            # worker states ride along every few seconds: they are a view, not a history; all of them with each
            # renewal, so a Server that marked them offline while this Manager was silent sees them again
            # new previews ride along like the worker states: a view, sent until the Server has them
            shown = previews.unsent(conn, PREVIEWS_PER_BATCH)
            # a preview of a worker the Server has not heard of yet would lose its worker half, and its blocklist
            # entry would be skipped there (an entry is taken only for a worker of this Manager): its state goes too
            dirty = self.core.workers.dirty
            blocklisted = {worker_id for _job, worker_id, _type in self.core.blocklist_dirty}
            unreported = any(r.worker_id in dirty for _i, r in shown) or not blocklisted.isdisjoint(dirty)
            reports = (
                self.core.workers.reports(everything=renew)
                if renew
                or unreported
                or self._reports_left
                or self.core.workers.news
                or now - self._last_reports >= REPORT_INTERVAL
                else []
            )
            first = {r.worker_id for _i, r in shown} | blocklisted
            if self._refused:  # left out for a renewal period, then offered again
                self._refused = {w: t for w, t in self._refused.items() if now - t < self._renew_every()}
                reports = [r for r in reports if r.id not in self._refused]
            reports, later = fit_reports(sorted(reports, key=lambda r: r.id not in first))
            self.core.workers.dirty.update(r.id for r in later)
            self._reports_left = bool(later)
            held = list(self.core.tasks) if renew else []
            blocked, complete, keys = blocklist_sync.take_reports(self.core, everything=renew)
            if self._refused:
                blocked = [b for b, k in zip(blocked, keys, strict=True) if k not in self._refused]
                keys = [k for k in keys if k not in self._refused]
            batch = UpdateBatch(
                seq=seq, task_updates=updates, workers=reports, held_task_ids=held, blocklist=blocked,
                blocklist_complete=complete, client_url=self._client_url(renew), previews=[r for _i, r in shown],
                variables=(
                    variable_names.reportable(self.config.variable_table()) if renew and self._say_variables else None
                ),
            )  # fmt: skip
            try:
                ack = await self.client.push(batch, answer_within=self._answer_within())
            except LinkRefused as exc:
                self.core.workers.dirty.update(r.id for r in reports)
                blocklist_sync.put_back(self.core, keys)
                expected = exc.field_message("seq") if exc.status_code == 409 else None
                if expected and expected.split()[-1].isdigit():
                    # the Server forgot batches (a restored database): continue after what it knows
                    outbox.resync(conn, int(expected.split()[-1]) - 1)
                    continue
                if exc.status_code == 422 and self._drop_refused(seq, exc, reports, keys, [i for i, _r in shown]):
                    continue
                raise
            except LinkError:
                self.core.workers.dirty.update(r.id for r in reports)
                blocklist_sync.put_back(self.core, keys)
                raise
            self._last_push = time.monotonic()
            if renew:
                self._last_renewal = now
            if reports:
                self._last_reports = self._last_push
            self._came_up()
            self.orders.take(ack)  # first: the Server has forgotten them, the batch it would take again
            if shown:
                with transaction(conn):
                    previews.mark_sent(conn, [i for i, _r in shown])
                if len(shown) == PREVIEWS_PER_BATCH:
                    self.core.link_wakeup.set()  # more are waiting
            if self._reports_left:
                self.core.link_wakeup.set()
            self._url_sent = batch.client_url or self._url_sent
            self.store.works()
            self._acknowledge(seq, ack)
            self._collected = max(self._collected, collects)
            self._pushed.set()
            sent += 1

    def _drop_refused(
        self, seq: int, exc: LinkRefused, reports: list[WorkerReport], keys: list[blocklist_sync.Key], shown: list[int]
    ) -> bool:
        """The Server will never take the task updates its 422 names (an update stored by an older Manager that
        holds what the Server now refuses, say): take them out of the batch and send the rest, rather than
        send the same batch for ever while every update after it waits. Their tasks are given up here as the
        Server's own refusals are; the Server requeues them when their lease runs out. A worker report or
        blocklist entry it names is left out of the batches for a renewal period, a preview it names is not sent
        again. True if any was dropped."""
        named = refused_parts(exc, "task_updates")
        dropped = outbox.drop_from_batch(self.core.conn, seq, named) if named else []
        for u in dropped:
            log.error("the Server refused an update of task %s for good; dropped: %s", u.task_id, exc.detail)
            self.core.drop([u.task_id], u.attempt)
        workers = {reports[i].id for i in refused_parts(exc, "workers") if i < len(reports)}
        blocks = {keys[i] for i in refused_parts(exc, "blocklist") if i < len(keys)}
        for part in (*workers, *blocks):
            log.error("the Server refused the report of %s; left out for now: %s", part, exc.detail)
            self._refused[part] = time.monotonic()
        refused_previews = [shown[i] for i in refused_parts(exc, "previews") if i < len(shown)]
        if refused_previews:
            log.error("the Server refused %d preview(s); dropped: %s", len(refused_previews), exc.detail)
            with transaction(self.core.conn):
                previews.mark_sent(self.core.conn, refused_previews)
        fields = [str(e.get("field", "")) for e in exc.body.get("errors", []) if isinstance(e, dict)]
        older = self._say_variables and any(f.split(".")[0] == "variables" for f in fields)
        if older:
            log.warning(
                "the Server does not take the names of this Manager's path variables (an older Server): not sent "
                "again until this Manager restarts; it cannot check a job's paths against them"
            )
            self._say_variables = False
        return bool(dropped or workers or blocks or refused_previews or older)

    def _acknowledge(self, seq: int, ack: UpdateAck) -> None:
        conn = self.core.conn
        self.lease_seconds = ack.lease_seconds
        if ack.last_seq > seq:
            # the Server knows a higher number than this store ever sent: it did not apply this batch;
            # renumber what is waiting to follow the Server's count (happens once for a fresh store)
            outbox.resync(conn, ack.last_seq)
        else:
            outbox.acknowledge(conn, seq)
        if get_meta(conn, "synced") is None:
            with transaction(conn):
                set_meta(conn, "synced", "1")

    # --- claims ----------------------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        failures = 0
        found_nothing = False
        while True:
            req = self.core.claim_request()
            if req is None and self.server_up and not any(w.current_task_id is not None for w in self.core.workers):
                # nobody works here, so no update batch would leave before the keep-alive: a claim for no tasks
                # waits at the Server for a wrangler's instructions instead (wake the sleeping workers, ...)
                req, found_nothing = ClaimRequest(capacity=0), True
            if req is None:
                self.core.claim_wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):  # not wait_for, which can lose a cancel on 3.11
                        await self.core.claim_wakeup.wait()
                continue
            if req.capacity and self.store.trouble is not None and not self.store.takes_writes():
                # tasks claimed now could not be stored: they would wait out their leases at the Server, held
                # from the other Managers, and the whole queue could end up here; claim again once it writes
                failures += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            # After a claim found nothing, wait at the Server until something is runnable (long polling). A
            # waiting claim holds no lock there, so it does not take the turn the update batches need.
            wait = self.config.claim_wait if found_nothing else 0.0
            started = time.monotonic()
            try:
                if wait:
                    resp = await self._long_claim(req, wait)
                    if resp is None:
                        continue  # a worker came that the waiting claim did not ask for: ask again at once
                else:
                    resp = await self.client.claim(req, answer_within=self._answer_within())
            except (LinkError, LinkRefused) as exc:
                failures += 1
                self._went_down(exc)
                wait_asked = exc.retry_after if isinstance(exc, LinkRefused) else busy_wait(exc)  # Retry-After
                await asyncio.sleep(max(self._backoff(failures), wait_asked))
                continue
            failures = 0
            self._came_up()
            self.lease_seconds = resp.lease_seconds
            if resp.instructions:
                await self._collect_instructions()
            # fewer than asked for: the Server has no more for now, so the next claim waits there for more
            found_nothing = len(resp.tasks) < req.capacity or not req.capacity
            if resp.tasks:
                try:
                    self.core.add_claimed(resp.tasks)
                except STORE_ERRORS as exc:
                    # stored before held (core.add_claimed): not held here, so not renewed, and the Server hands
                    # them out again when their lease runs out
                    self.store.failed(exc, f"{len(resp.tasks)} claimed task(s) not all stored (those not go back)")
                    failures += 1
                    await asyncio.sleep(self._backoff(failures))
                    continue
                self.store.works()
                self.core.link_wakeup.set()  # renew their leases soon
                await asyncio.sleep(0)  # let the waiting workers' answers leave before the next claim is built
            elif wait and time.monotonic() - started < wait / 2 and not resp.instructions:
                # the Server answered "nothing" without holding the claim (an older Server): pace the retries
                await asyncio.sleep(self.config.claim_retry)

    async def _collect_instructions(self) -> None:
        """Send a batch now and wait until the Server took it: its answer carries the instructions, and a claim
        sent before that would only be told about them again."""
        self._collects += 1
        mine = self._collects
        self.core.link_wakeup.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(COLLECT_WAIT):  # not wait_for, which can lose a cancel on 3.11
                while self._collected < mine:
                    self._pushed.clear()
                    await self._pushed.wait()

    async def _long_claim(self, req: ClaimRequest, wait: float) -> ClaimResponse | None:
        """A claim waiting at the Server; None when it was given up because it no longer fits the workers.

        The waiting claim names the capacity, task types and tags of the workers there were when it left. When
        that set of workers changes (one signs on with other kinds, goes to sleep, signs off, times out), the
        claim would bring too little, the wrong kinds, or tasks nobody here will run for a while: it is
        dropped and, if anyone is left to work, asked again at once (the Server gives back what it leased to a
        claim whose Manager hung up).
        """
        workers = self.core.available_worker_ids()
        server = self.client.server_url
        claim = asyncio.ensure_future(self.client.claim(req.model_copy(update={"wait_seconds": wait})))
        woke: asyncio.Task[Any] | None = None
        try:
            while True:
                self.core.claim_wakeup.clear()
                woke = asyncio.ensure_future(self.core.claim_wakeup.wait())
                await asyncio.wait({claim, woke}, return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                if claim.done():
                    return claim.result()
                now = self.core.claim_request()
                if (
                    self.core.available_worker_ids() != workers
                    or _outgrown(req, now)
                    or (now and not req.capacity)
                    or self.client.server_url != server  # the batches moved on from a Server that hangs
                ):
                    claim.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await claim
                    return None if claim.cancelled() else claim.result()
        finally:
            claim.cancel()
            if woke is not None:
                woke.cancel()

    # --- housekeeping ----------------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        every = min(1.0, self.config.worker_timeout / 4)
        stall_after = every + self.config.worker_timeout / 4
        last = time.monotonic()
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            if now - last > stall_after:
                # stopped (SIGSTOP, a paused VM) or starved: nobody was heard, and the workers' requests wait to be
                # read; timed out now, they would lose the tasks they finished meanwhile and run them again
                self.core.workers.awake_since = now
                log.warning("this Manager was stalled for %.0f s: its workers get %.0f s to be heard again",
                            now - last - every, self.config.worker_timeout)  # fmt: skip
            last = now
            try:
                if self.core.sweep_timeouts():
                    self.core.link_wakeup.set()
            except STORE_ERRORS as exc:
                self.store.failed(exc, "silent workers are looked at again in a moment")

    async def give_back(self, within: float = 5.0) -> None:
        """Clean shutdown: hand unstarted tasks back to the Server and flush the buffer (best effort)."""
        try:
            self.core.give_back_ready()
            await asyncio.wait_for(self.push_pending(everything=True), within)
        except (TimeoutError, LinkError, LinkRefused, *STORE_ERRORS) as exc:
            log.warning("could not flush the update buffer at shutdown (kept for the next start): %r", exc)

    async def _renew_leases(self) -> None:
        """While the store takes no write, renew the leases of the tasks held here with a repeat of a batch the
        Server took (it applies nothing from a repeat but renews the leases it names), so that the tasks the
        workers run are not handed out again elsewhere; a new batch needs a sequence number, which is a write."""
        conn = self.core.conn
        if time.monotonic() - self._last_renewal < self._renew_every() * 0.8:
            return
        try:
            if get_meta(conn, "synced") is None:
                return
            oldest = conn.execute("SELECT MIN(seq) FROM batches").fetchone()[0]
            taken = (int(oldest) if oldest is not None else int(get_meta(conn, "next_seq") or "1")) - 1
            # a task that finished here, its report waiting with the others, is still this Manager's at the
            # Server: its lease is renewed too, or it would expire and the finished work run again
            waiting = outbox.tasks_waiting(conn)
        except STORE_ERRORS:
            return
        if taken < 1:
            return
        reports = self.core.workers.reports(everything=True)
        held = [*self.core.tasks, *sorted(waiting.difference(self.core.tasks))][:HELD_TASK_IDS_MAX]
        batch = UpdateBatch(seq=taken, held_task_ids=held, workers=reports)
        try:
            ack = await self.client.push(batch, answer_within=self._answer_within())
        except (LinkError, LinkRefused) as exc:
            self._went_down(exc)
            return
        self._last_renewal = time.monotonic()
        self.lease_seconds = ack.lease_seconds
        try:
            self.orders.take(ack)  # one-shot orders (a cancel): the Server has forgotten them
        except STORE_ERRORS as exc:
            self.store.failed(exc, "orders from the Server wait to be applied")

    def _client_url(self, renew: bool) -> str | None:
        """Where users reach this Manager: told with each renewal, and at once when it changes."""
        url = self.config.public_url
        return url if url and (renew or url != self._url_sent) else None

    def _renew_every(self) -> float:
        return min(self.config.keepalive, self.lease_seconds / 4)

    def _answer_within(self) -> float | None:
        """How long a batch or a short claim may wait for its answer before the next Server is tried.

        With other Servers to go to, a quarter lease (5 to 30 s): a Server that hangs (stopped, swapping, a
        paused VM) took the client's whole 30 s, the farm's reports and renewals waiting behind it, and with a
        short lease the leases ran out meanwhile and finished tasks ran again. With one Server there is nowhere
        else to go: its own 30 s."""
        if len(self.client.urls) < 2:
            return None
        return min(30.0, max(5.0, self.lease_seconds / 4))

    async def _compact_queue(self) -> None:
        """Updates wait while the Server is away: their queue is kept to about a row per task (outbox.compact), in
        merges of a bounded size with the loop free between them, again once the queue has doubled since."""
        at = max(outbox.COMPACT_AT, 2 * self._compacted)
        while True:
            try:
                merged = outbox.compact(self.core.conn, at=at)
            except STORE_ERRORS as exc:  # a full disk, say: the queue stays as it is, and the store says so
                self.store.failed(exc, "updates wait")
                return
            if merged is None:
                return
            read, left = merged
            self._compacted = left
            if left >= read:
                return  # its head alone is a whole merge's worth (very many tasks' long tails): no further now
            await asyncio.sleep(0)  # the workers' requests go in between

    def _backoff(self, failures: int) -> float:
        base = min(self.config.backoff_max, 0.1 * 2.0 ** min(failures, 10))
        return base * random.uniform(0.5, 1.0)

    def _went_down(self, exc: Exception) -> None:
        if isinstance(exc, ServerBusy):  # it works: its database gave this request up, to be sent again
            if self._busy_said.due("busy"):
                log.info("the Server was busy: %s; asking it again in %.0f s", exc, exc.retry_after)
            return
        refused = isinstance(exc, LinkRefused)  # it answers, but not to this Manager (its token, say)
        due = self._down_said.due(refused)
        if self.server_up:
            others = f"; trying {self.client.server_url} next" if len(self.client.urls) > 1 else ""
            log.warning("lost the Server: %s%s", exc, others)
            self.core.claim_wakeup.set()  # a claim waiting at the lost Server is asked again at the next one
        elif due:
            # never reached yet (a wrong address, a Server not started), or still away: said, not every retry
            if refused:
                log.error("the Server at %s refuses this Manager: %s; still trying", self.client.server_url, exc)
            else:
                log.warning("cannot reach the Server at %s: %s; still trying", self.client.server_url, exc)
        self.server_up = False

    def _came_up(self) -> None:
        if not self.server_up:
            log.info("connected to the Server at %s", self.client.server_url)
        self.server_up = True


def busy_wait(exc: LinkError) -> float:
    """The wait a busy Server asked for (its Retry-After), else none."""
    return exc.retry_after if isinstance(exc, ServerBusy) else 0.0


def _outgrown(waiting: ClaimRequest, now: ClaimRequest | None) -> bool:
    """True when the workers now offer task types or tags the waiting claim does not ask for."""
    if now is None:
        return False
    return not (set(now.task_types) <= set(waiting.task_types) and set(now.tags) <= set(waiting.tags))

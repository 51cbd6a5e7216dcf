"""The hand-off to waiting claims without a database: which claims are offered tasks, and when they get them."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from services.protocol.jobs import OnTaskFailure
from services.protocol.link import ClaimedTask, ClaimRequest
from services.server.dispatch import Dispatcher, SlotState, WaitingClaim


def claimed(task_id: int) -> ClaimedTask:
    return ClaimedTask(
        id=task_id, job_id=1, job_name="j", job_priority=50, job_created=datetime.now(UTC), job_tags=[],
        max_task_failures=3, on_task_failure=OnTaskFailure.CONTINUE, index=task_id, name=f"t{task_id}", type="x",
        attempt=1, failure_count=0, commands=[], steps_total=1,
    )  # fmt: skip


REQ = ClaimRequest(capacity=2, task_types=["x"])


async def test_only_open_claims_are_offered_tasks_and_they_get_them_after_the_commit() -> None:
    dispatcher = Dispatcher()
    wake_a, wake_b = asyncio.Event(), asyncio.Event()
    with dispatcher.waiting(1, REQ, wake_a) as a, dispatcher.waiting(2, REQ, wake_b) as b:
        dispatcher.open(a)  # b is still looking: a look and a hand-off never both give it tasks
        offered: list[int] = []

        def lease(claim: WaitingClaim) -> list[ClaimedTask]:
            offered.append(claim.manager_id)
            return [claimed(10)]

        with dispatcher.offering(lambda c: True, lease):
            assert a.state == SlotState.RESERVED  # nothing delivered before the commit
            assert not wake_a.is_set()
        assert offered == [1]
        await asyncio.wait_for(wake_a.wait(), 1)
        assert not wake_b.is_set()
        assert [t.id for t in await dispatcher.close(a)] == [10]
        assert await dispatcher.close(b) == []
        assert a.state == b.state == SlotState.LOOKING


async def test_a_claim_refused_or_given_nothing_stays_open() -> None:
    dispatcher = Dispatcher()
    with dispatcher.waiting(1, REQ, asyncio.Event()) as slot:
        dispatcher.open(slot)
        with dispatcher.offering(lambda c: False, lambda c: pytest.fail("a refused claim is not leased to")):
            pass
        assert slot.state == SlotState.OPEN
        with dispatcher.offering(lambda c: True, lambda c: []):
            pass
        assert slot.state == SlotState.OPEN


async def test_a_failed_commit_opens_the_claim_again_without_tasks() -> None:
    dispatcher = Dispatcher()
    wake = asyncio.Event()
    with dispatcher.waiting(1, REQ, wake) as slot:
        dispatcher.open(slot)
        with pytest.raises(RuntimeError), dispatcher.offering(lambda c: True, lambda c: [claimed(1)]):
            raise RuntimeError("the commit failed")
        assert slot.state == SlotState.OPEN
        await asyncio.wait_for(wake.wait(), 1)  # woken, so it looks for itself
        assert await dispatcher.close(slot) == []


async def test_closing_waits_for_a_reservation_in_progress() -> None:
    dispatcher = Dispatcher()
    wake = asyncio.Event()
    leased, commit = threading.Event(), threading.Event()

    def offer() -> None:
        with dispatcher.offering(lambda c: True, lambda c: [claimed(7)]):
            leased.set()
            commit.wait(5)  # the offering transaction is still committing

    with dispatcher.waiting(1, REQ, wake) as slot:
        dispatcher.open(slot)
        thread = threading.Thread(target=offer)
        thread.start()
        await asyncio.to_thread(leased.wait, 5)
        closing = asyncio.ensure_future(dispatcher.close(slot))
        await asyncio.sleep(0.05)
        assert not closing.done()  # the claim may not leave while tasks are being leased to it
        commit.set()
        assert [t.id for t in await asyncio.wait_for(closing, 2)] == [7]
        thread.join()
    with dispatcher.offering(lambda c: pytest.fail("a claim that left is not offered anything"), lambda c: []):
        pass

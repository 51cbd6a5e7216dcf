"""A task request whose wait the Manager ended to pass on a wrangler's request: the agent carries it out at
once, and a request it has already carried out does not make it ask again without pause."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.protocol.states import WorkerStatus
from services.worker.agent import Agent
from services.worker.agent_config import AgentConfig
from services.worker.buffer import open_buffer


def _agent(tmp_path: Path, headers: dict[str, str]) -> Agent:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/task")
        return httpx.Response(204, headers={"Retry-After": "1", **headers})

    agent = Agent(
        AgentConfig(manager_url="http://127.0.0.1:9", data_dir=tmp_path, poll_wait=1.0),
        transport=httpx.MockTransport(answer),
    )
    agent.buffer = open_buffer(tmp_path, agent.client)
    agent.status = WorkerStatus.AWAKE
    return agent


@pytest.mark.timeout(30)
async def test_a_sleep_request_in_the_answer_is_carried_out_at_once(tmp_path: Path) -> None:
    agent = _agent(tmp_path, {"Tablao-Status-Requested": "asleep", "Tablao-Status-Lazy": "0"})
    started = time.monotonic()
    assert await agent._next_task() is None
    assert agent.status == WorkerStatus.ASLEEP
    assert time.monotonic() - started < 0.5  # not paced by Retry-After: the worker has something to do
    assert agent.buffer is not None
    agent.buffer.close()
    await agent.client.aclose()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("headers", [{"Tablao-Status-Requested": "awake"}, {"Tablao-Status-Requested": "dance"}])
async def test_a_request_already_carried_out_or_unknown_is_paced(tmp_path: Path, headers: dict[str, str]) -> None:
    agent = _agent(tmp_path, headers)
    started = time.monotonic()
    assert await agent._next_task() is None
    assert agent.status == WorkerStatus.AWAKE
    assert time.monotonic() - started >= 0.9  # waited out Retry-After (1 s, the poll wait): no busy loop
    assert agent.buffer is not None
    agent.buffer.close()
    await agent.client.aclose()


@pytest.mark.timeout(30)
async def test_a_finished_tasks_updates_refused_for_want_of_a_sign_on_are_sent_again_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Manager restarted (SIGKILL) between a task's end and the request carrying its result has no sign-on of
    the worker: its 409 says so (Tablao-Sign-On-First) and the result was not looked at. The worker used to take
    it for a stale hand-out and drop the result, and the task ran again; it signs on and sends it again."""
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            detail = "this worker has not signed on: call /api/v1/worker/sign-on first"
            return httpx.Response(409, json={"detail": detail, "errors": []}, headers={"Tablao-Sign-On-First": "1"})
        return httpx.Response(204, headers={"Retry-After": "0.1"})

    agent = Agent(
        AgentConfig(manager_url="http://127.0.0.1:9", data_dir=tmp_path, poll_wait=0.1),
        transport=httpx.MockTransport(answer),
    )
    agent.buffer = open_buffer(tmp_path, agent.client)
    agent.status = WorkerStatus.AWAKE
    agent.buffer.put(7, 3, status="completed", log_lines=["rendered"])
    agent._finished_task = 7
    signed_on: list[bool] = []

    async def sign_on() -> None:
        signed_on.append(True)

    monkeypatch.setattr(agent, "_sign_on", sign_on)
    assert await agent._next_task() is None
    assert signed_on == [True] and agent.buffer.pending_count() == 1  # kept, not dropped as stale
    assert await agent._next_task() is None
    assert bodies[1]["finished_task_id"] == 7
    assert [u["status"] for u in bodies[1]["finished"]["updates"]] == ["completed"]
    assert agent.buffer.pending_count() == 0
    agent.buffer.close()
    await agent.client.aclose()


@pytest.mark.timeout(30)
async def test_a_prefetch_refused_for_want_of_a_sign_on_keeps_the_finished_tasks_updates(tmp_path: Path) -> None:
    """The same refusal met by the prefetch request, which carries the task before's result while the next one
    runs: the result stays in the buffer (its sender or the work loop sends it again), it is not dropped."""
    from services.protocol.worker_client import NotSignedOn, WorkerClient
    from services.worker.prefetcher import Prefetcher

    def answer(_request: httpx.Request) -> httpx.Response:
        detail = "this worker has not signed on: call /api/v1/worker/sign-on first"
        return httpx.Response(409, json={"detail": detail, "errors": []}, headers={"Tablao-Sign-On-First": "1"})

    client = WorkerClient("http://127.0.0.1:9", transport=httpx.MockTransport(answer))
    prefetcher = Prefetcher(client, poll_wait=0.1, may_ask=lambda: True)
    prefetcher.buffer = buffer = open_buffer(tmp_path, client)
    buffer.put(7, 3, status="completed", log_lines=["rendered"])
    with pytest.raises(NotSignedOn):
        await prefetcher._request(8, 7, wait=0)
    assert buffer.pending_count() == 1
    buffer.close()
    await client.aclose()

"""A task request whose wait the Manager ended to pass on a wrangler's request: the agent carries it out at
once, and a request it has already carried out does not make it ask again without pause."""

from __future__ import annotations

import time
from pathlib import Path

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

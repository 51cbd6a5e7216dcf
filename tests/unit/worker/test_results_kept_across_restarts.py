"""A worker killed and started again keeps the results its buffer holds (found by a fault-injection audit: on
most SIGKILLs of a worker running short tasks a finished result was dropped and the task ran again).

- The killed run's updates of a task and the next run's finished report of the same task went in one request:
  the Manager refused it for the killed run's stale hand-out, and the refusal dropped both runs' updates.
- A worker started again while its Manager was away asked for a task before its buffer delivered the results it
  made during the outage; the Manager took the task it still held for the worker as abandoned, and the result,
  arriving after, was refused.

Here a scripted Manager (httpx's MockTransport) answers as the real one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.protocol.states import WorkerStatus
from services.worker.agent import Agent
from services.worker.agent_config import AgentConfig
from services.worker.buffer import open_buffer


class ScriptedManager:
    """Holds `task` for the worker at hand-out `current`; refuses a request carrying an update of an older
    hand-out of it (409, the whole request, as the Manager does); a task request while the worker holds the task
    takes it back (abandoned), after which its updates are refused too."""

    def __init__(self, task: int, current: int) -> None:
        self.task, self.current = task, current
        self.held = True
        self.accepted: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        path = request.url.path
        if path.endswith("/updates"):
            self.calls.append("updates")
            refused = self._take(int(path.split("/")[-2]), body["updates"])
            return refused or httpx.Response(200, json={"last_seq": 0})
        assert path.endswith("/task"), path
        self.calls.append("task")
        if "finished" in body:
            refused = self._take(body["finished_task_id"], body["finished"]["updates"])
            if refused is not None:
                return refused
        elif self.held:
            self.held = False  # asked for work while holding one: abandoned
        return httpx.Response(204, headers={"Retry-After": "0.1"})

    def _take(self, task: int, updates: list[dict[str, Any]]) -> httpx.Response | None:
        """None when the updates are taken; else the 409 refusing them all."""
        for update in updates:
            if task != self.task or update["handout"] != self.current or not self.held:
                detail = f"hand-out {update['handout']} of task {task} is stale (current: {self.current}): stop it"
                return httpx.Response(409, json={"detail": detail, "errors": []})
        self.accepted += updates
        return None


def agent_of(tmp_path: Path, manager: ScriptedManager) -> Agent:
    agent = Agent(
        AgentConfig(manager_url="http://127.0.0.1:9", data_dir=tmp_path, poll_wait=0.1),
        transport=httpx.MockTransport(manager.answer),
    )
    agent.buffer = open_buffer(tmp_path, agent.client)
    agent.status = WorkerStatus.AWAKE
    return agent


async def close(agent: Agent) -> None:
    assert agent.buffer is not None
    agent.buffer.close()
    await agent.client.aclose()


@pytest.mark.timeout(30)
async def test_a_killed_runs_updates_do_not_take_the_next_runs_result_with_them(tmp_path: Path) -> None:
    manager = ScriptedManager(task=21, current=30)
    agent = agent_of(tmp_path, manager)
    assert agent.buffer is not None
    agent.buffer.put(21, 28, status="active", log_lines=["the run that was killed"])
    agent.buffer.put(21, 30, status="active")
    agent.buffer.put(21, 30, status="completed", log_lines=["rendered"])
    agent._finished_task = 21  # the restarted worker ran hand-out 30 to its end
    for _ in range(3):
        await agent._next_task()
    assert [u["status"] for u in manager.accepted] == ["active", "completed"]
    assert {u["handout"] for u in manager.accepted} == {30}
    assert agent.buffer.pending_count() == 0
    await close(agent)


@pytest.mark.timeout(30)
async def test_a_restarted_worker_delivers_its_buffered_results_before_asking_for_work(tmp_path: Path) -> None:
    manager = ScriptedManager(task=3, current=3)
    agent = agent_of(tmp_path, manager)
    assert agent.buffer is not None
    agent.buffer.put(3, 3, status="completed", log_lines=["finished while the Manager was away"])
    assert agent._finished_task is None  # a new process: it knows nothing of what it finished before
    for _ in range(2):
        await agent._next_task()
    assert manager.calls[0] == "updates"  # the result first, then the request for work
    assert [u["status"] for u in manager.accepted] == ["completed"]
    assert agent.buffer.pending_count() == 0
    await close(agent)


@pytest.mark.timeout(30)
async def test_a_worker_whose_disk_is_full_lets_go_of_its_cached_sandbox_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cached Landlock rules hold open the files beside the folders on the way to each protected one: a file
    deleted there to make room kept its space while they were cached, and a worker waiting for room (taking no
    task, so never rebuilding them) waited for good (found by a fault-injection re-run on a 3 MB disk)."""
    from services.worker import agent as agent_module

    forgotten = asyncio.Event()
    monkeypatch.setattr(agent_module, "forget_rulesets", forgotten.set)
    agent = agent_of(tmp_path, ScriptedManager(task=1, current=1))
    assert agent.buffer is not None
    agent.buffer.writable.clear()  # the disk is full
    loop = asyncio.create_task(agent._work_loop())
    try:
        async with asyncio.timeout(5):
            await forgotten.wait()
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    await close(agent)

"""The control channel reads hostile input safely: over-long lines, non-JSON, unknown commands; EOF stops."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import pytest

from services.worker.agent import Agent
from services.worker.agent_config import AgentConfig
from services.worker.control import LINE_MAX_BYTES, ControlChannel


class Out(io.BytesIO):
    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


@pytest.mark.timeout(30)
async def test_hostile_lines_are_refused_and_end_of_input_stops_the_agent(tmp_path: Path) -> None:
    agent = Agent(AgentConfig(manager_url="http://127.0.0.1:9", data_dir=tmp_path))
    stopped: list[str] = []
    agent.stop = lambda code=0, why="": stopped.append(why)  # type: ignore[method-assign]
    read_fd, write_fd = os.pipe()
    out = Out()
    channel = ControlChannel(agent, stdin_fd=read_fd, stdout=out)
    channel.start(asyncio.get_running_loop())
    os.write(write_fd, b"x" * (LINE_MAX_BYTES * 3) + b'{"cmd": "resume"}\n')  # one long line, dropped whole
    os.write(write_fd, b"[1, 2]\n\n   \n")
    os.write(write_fd, b'{"cmd": "pause", "now": false, "reason": "outside-hours"}\n{"cmd": "status"}\n')
    os.close(write_fd)
    for _ in range(200):
        if stopped:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    events = out.events()
    errors = [e["detail"] for e in events if e["event"] == "error"]
    assert errors == [f"a command line is longer than {LINE_MAX_BYTES} bytes", "a command must be a JSON object"]
    assert agent.paused and agent.unavailable == "outside-hours"  # the resume inside the long line was not run
    assert events[-1]["event"] == "state" and events[-1]["unavailable"] == "outside-hours"
    assert stopped == ["the controller closed the control channel"]
    os.close(read_fd)
    await agent.client.aclose()


@pytest.mark.timeout(30)
async def test_a_long_line_split_over_reads_is_dropped_to_its_end(tmp_path: Path) -> None:
    agent = Agent(AgentConfig(manager_url="http://127.0.0.1:9", data_dir=tmp_path))
    agent.stop = lambda code=0, why="": None  # type: ignore[method-assign]
    read_fd, write_fd = os.pipe()
    out = Out()
    ControlChannel(agent, stdin_fd=read_fd, stdout=out).start(asyncio.get_running_loop())
    os.write(write_fd, b"y" * (LINE_MAX_BYTES * 2))
    await asyncio.sleep(0.2)
    os.write(write_fd, b'{"cmd": "pause"}\n{"cmd": "pause", "reason": "user-active"}\n')
    for _ in range(200):
        if agent.paused:
            break
        await asyncio.sleep(0.02)
    assert agent.unavailable == "user-active"  # the first pause was the long line's tail: not run
    assert [e["event"] for e in out.events()] == ["error", "state"]
    os.close(write_fd)
    os.close(read_fd)
    await agent.client.aclose()

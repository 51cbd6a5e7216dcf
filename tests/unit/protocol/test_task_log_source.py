"""A Manager's answer to a log read is what was asked for: one sending far more is cut off, not held whole."""

from __future__ import annotations

import httpx
import pytest

from services.protocol.server_client import ServerClient
from services.protocol.task_log_source import TaskLogReader


def reader_of(body: bytes) -> TaskLogReader:
    def answer(_request: httpx.Request) -> httpx.Response:
        headers = {"x-log-first": "3", "x-log-last": "9", "x-log-earlier": "1"}
        return httpx.Response(200, content=body, headers=headers)

    reader = TaskLogReader(ServerClient("http://127.0.0.1:9", "t"), "t", 1)
    reader._http = httpx.AsyncClient(base_url="http://m/api/v1/tasks/1", transport=httpx.MockTransport(answer))
    return reader


async def test_a_part_is_read_with_its_cursors() -> None:
    reader = reader_of("line é\n".encode())
    part = await reader._from_manager("http://m", tail=1000)
    assert (part.text, part.first, part.last, part.earlier) == ("line é\n", 3, 9, True)
    await reader.aclose()
    await reader.client.aclose()


async def test_a_manager_sending_far_more_than_asked_is_cut_off() -> None:
    reader = reader_of(b"x" * 50_000_000)
    with pytest.raises(httpx.DecodingError, match="over"):
        await reader._from_manager("http://m", tail=1000)
    await reader.aclose()
    await reader.client.aclose()

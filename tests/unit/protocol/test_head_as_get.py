"""HEAD is answered as GET without the body (head_as_get.py), a stream included; a path without GET is a 405."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from services.protocol import api_contract
from services.protocol.head_as_get import HeadAsGet


def _app() -> FastAPI:
    app = FastAPI()
    api_contract.install_error_shape(app)
    app.state.chunks_sent = 0

    @app.get("/things")
    async def things() -> dict[str, list[int]]:
        return {"things": [1, 2, 3]}

    @app.post("/things")
    async def add_thing() -> int:
        return 1

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def endless() -> AsyncIterator[bytes]:
            for n in itertools.count():
                app.state.chunks_sent += 1
                yield f"chunk {n}\n".encode()
                await asyncio.sleep(0.001)

        return StreamingResponse(endless(), media_type="text/event-stream")

    app.add_middleware(HeadAsGet)
    return app


async def _call(app: FastAPI, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await asyncio.wait_for(client.request(method, path), 5)


def test_head_is_get_without_the_body() -> None:
    app = _app()
    got = asyncio.run(_call(app, "GET", "/things"))
    head = asyncio.run(_call(app, "HEAD", "/things"))
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and got.json() == {"things": [1, 2, 3]}
    assert head.headers["content-length"] == got.headers["content-length"]  # what GET would send
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_of_a_stream_ends_once_its_headers_are_out() -> None:
    app = _app()
    head = asyncio.run(_call(app, "HEAD", "/stream"))  # an endless stream: wait_for fails if it does not end
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/event-stream")
    assert app.state.chunks_sent == 1


def test_head_of_a_path_without_get_is_a_405_naming_what_it_takes() -> None:
    app = FastAPI()
    api_contract.install_error_shape(app)

    @app.post("/login")
    async def login() -> int:
        return 1

    app.add_middleware(HeadAsGet)
    r = asyncio.run(_call(app, "HEAD", "/login"))
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and r.content == b""

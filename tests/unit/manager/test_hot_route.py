"""The Manager's hot route answers exactly as the router would, errors included, and leaves other requests alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from services.manager.api.hot_path import HotRoute
from services.manager.errors import ApiError, Conflict, Unauthorized
from services.protocol import api_contract
from services.protocol.body_limit import BodyLimit

LIMIT = 1000


async def handler(request: Request) -> Response:
    body = await request.body()
    match body:
        case b"unauthorized":
            raise Unauthorized("who are you", "authorization")
        case b"conflict":
            raise Conflict("not signed on", "worker")
        case b"invalid":
            raise RequestValidationError([{"loc": ("body", "wait_seconds"), "msg": "bad", "type": "value_error"}])
        case b"teapot":
            raise HTTPException(418, "short and stout", headers={"X-Why": "tea"})
        case b"crash":
            raise RuntimeError("a bug")
    return Response(b'{"echo":' + str(len(body)).encode() + b"}", 200, media_type="application/json")


def make_app() -> FastAPI:
    app = FastAPI()
    app.post("/hot")(handler)
    app.post("/routed")(handler)
    api_contract.install_error_shape(app)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Basic"} if exc.status_code == 401 else None
        return api_contract.error_json(exc.status_code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return api_contract.error_json(422, str(exc.errors()[0]["msg"]))

    app.add_middleware(HotRoute, method="POST", path="/hot", handler=handler)
    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    return app


async def both(content: bytes) -> tuple[httpx.Response, httpx.Response]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        hot = await client.post("/hot", content=content)
        routed = await client.post("/routed", content=content)
    return hot, routed


@pytest.mark.parametrize("content", [b"ok", b"unauthorized", b"conflict", b"invalid", b"teapot", b"crash", b"x" * 2000])
def test_the_hot_route_answers_as_the_router_does(content: bytes) -> None:
    hot, routed = asyncio.run(both(content))
    assert hot.status_code == routed.status_code
    assert hot.json() == routed.json()
    for name in ("www-authenticate", "x-why", "content-type"):
        assert hot.headers.get(name) == routed.headers.get(name)
    if content == b"crash":
        assert hot.status_code == 500 and "a bug" not in hot.text
    if len(content) > LIMIT:
        assert hot.status_code == 413 and hot.json()["errors"][0]["field"] == "body"


def test_other_methods_and_paths_go_through_the_app() -> None:
    async def run() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=make_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/hot")).status_code, (await client.post("/hot/more")).status_code

    assert asyncio.run(run()) == (405, 404)

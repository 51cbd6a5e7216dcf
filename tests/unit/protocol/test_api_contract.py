"""The shared API contract: unexpected errors still answer with the documented body, and the OpenAPI
document declares the error schema instead of FastAPI's default."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from services.protocol import api_contract


def _app() -> FastAPI:
    app = FastAPI()
    api_contract.install_error_shape(app)

    @app.post("/boom/{item_id}")
    async def boom(item_id: int) -> dict[str, int]:
        raise RuntimeError(f"bug with {item_id}")

    api_contract.document_errors(app)
    return app


def test_a_500_has_the_documented_body() -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/boom/1")

    r = asyncio.run(call())
    assert r.status_code == 500
    assert r.json() == {"detail": "an error inside the service; its log has the details", "errors": []}
    assert "bug with" not in r.text  # internals stay in the log


def test_the_document_declares_the_real_error_body() -> None:
    doc = _app().openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    responses = doc["paths"]["/boom/{item_id}"]["post"]["responses"]
    assert {"404", "409", "413", "422", "500"} <= set(responses)
    assert responses["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_a_405_allows_every_method_of_the_path_not_only_its_first_routes() -> None:
    app = FastAPI()
    api_contract.install_error_shape(app)

    @app.get("/things")
    async def list_things() -> list[int]:
        return []

    @app.post("/things")
    async def add_thing() -> int:
        return 1

    @app.delete("/things/{thing_id}")
    async def remove_thing(thing_id: int) -> None:
        return None

    async def call(method: str, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path)

    for method in ("OPTIONS", "PUT", "PATCH"):
        r = asyncio.run(call(method, "/things"))
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET, HEAD, POST"
        assert r.json()["detail"] == f"{method} is not allowed here; this path takes GET, HEAD, POST"
        assert [e["field"] for e in r.json()["errors"]] == ["method"]
    r = asyncio.run(call("GET", "/things/3"))
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE"


def test_a_path_no_route_takes_names_the_path() -> None:
    """Told apart from an unknown id (404 naming it): the client's address is wrong, not the thing it asks for."""

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://test") as client:
            return await client.get("/no/such/route")

    r = asyncio.run(call())
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found", "errors": [{"field": "path", "message": "Not Found"}]}

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

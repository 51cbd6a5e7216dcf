"""The Manager's app factory: the store, the farm core, the Server link and the HTTP API, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.manager.api import clients, worker
from services.manager.api.deps import ClientTokens
from services.manager.config import ManagerConfig
from services.manager.errors import FarmError
from services.manager.farm import Farm
from services.manager.server_link import ServerLink
from services.manager.store.check import store_path
from services.manager.store.db import connect
from services.protocol import VERSION
from services.protocol.common import ErrorResponse, FieldError
from services.protocol.manager_client import ManagerClient

log = logging.getLogger(__name__)


def registration_secret(config: ManagerConfig) -> str:
    """The farm's worker registration secret: from the config, else the data dir's file (made at first start)."""
    if config.registration_secret:
        return config.registration_secret
    path = config.registration_secret_file()
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


class BodyLimit:
    """Refuses request bodies larger than the limit with 413 before reading them (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and int(value or 0) > self.limit:
                    body = ErrorResponse(detail=f"request body larger than {self.limit} bytes")
                    resp = JSONResponse(body.model_dump(), status_code=413)
                    await resp(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(config: ManagerConfig) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        conn = connect(store_path(config.data_dir))
        farm = Farm(conn, config)
        client = ManagerClient(config.server_url, config.token, ca_bundle=config.ca_bundle)
        link = ServerLink(farm, client)
        app.state.farm = farm
        app.state.link = link
        app.state.registration_secret = registration_secret(config)
        app.state.client_tokens = ClientTokens(client, config.client_token_cache_seconds)
        runner = asyncio.create_task(link.run(), name="server-link")
        try:
            yield
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await link.give_back()
            await client.aclose()
            conn.close()

    app = FastAPI(
        title="Tablao Manager",
        version=VERSION,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(worker.router)
    app.include_router(clients.router)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    @app.exception_handler(FarmError)
    async def farm_error(_request: Request, exc: FarmError) -> JSONResponse:
        errors = [FieldError(field=exc.field, message=exc.message)] if exc.field else []
        body = ErrorResponse(detail=exc.message, errors=errors)
        headers = {"WWW-Authenticate": "Basic"} if exc.status_code == 401 else None
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return JSONResponse(ErrorResponse(detail=detail, errors=errors).model_dump(), status_code=422)

    return app


def _field_error(err: Any) -> FieldError:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    field = ""
    for part in loc:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    return FieldError(field=field or "body", message=str(err.get("msg", "invalid")))

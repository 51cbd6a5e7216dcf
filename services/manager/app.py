"""The Manager's app factory: the store, the core (tasks, workers), the Server link and the API, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.manager.api import clients, door, worker
from services.manager.api.deps import ClientTokens, wanted_at
from services.manager.api.hot_path import HotRoute
from services.manager.config import ManagerConfig
from services.manager.core import ManagerCore
from services.manager.errors import ApiError, NotSignedOn, Superseded, TooManyAttempts
from services.manager.server_link import ServerLink
from services.manager.store.check import disk_problem, store_path
from services.manager.store.db import connect, get_meta, set_meta
from services.protocol import VERSION, api_contract
from services.protocol.backoff import Backoff, retry_after_header
from services.protocol.body_limit import PUBLIC_BODY_BYTES, BodyLimit
from services.protocol.common import ErrorResponse, FieldError
from services.protocol.credentials_first import CredentialsFirst
from services.protocol.head_as_get import HeadAsGet
from services.protocol.input_guard import InputGuard
from services.protocol.manager_client import ManagerClient
from services.protocol.secret_files import read_secret, write_secret
from services.protocol.stopping import AnswerWhenStopping
from services.protocol.token_text import registration_secret_problem
from services.protocol.worker_api import SIGN_ON_HEADER, SUPERSEDED_HEADER

log = logging.getLogger(__name__)

# statuses the rule of thumb in api_contract._statuses does not see (route -> extra statuses)
STORE_RETRY_AFTER = 5.0  # seconds a client is told to wait while the Manager's store takes no write
EXTRA_STATUSES: dict[str, set[int]] = {
    "POST /api/v1/worker/register": {401, 403, 409, 429},  # a wrong registration secret; too many workers
    "GET /api/v1/status": {503},
    "GET /api/v1/tasks/{task_id}/log": {503},
}


def store_id(conn: sqlite3.Connection) -> str:
    """This store's id, made at its first start: the Server tells two Managers sharing a token apart by it."""
    if (known := get_meta(conn, "store_id")) is not None:
        return known
    made = uuid.uuid4().hex
    set_meta(conn, "store_id", made)  # autocommit: one statement
    return made


def registration_secret(config: ManagerConfig) -> str:
    """The farm's worker registration secret: from the config, else the data dir's file (made at first start).

    ValueError naming the file when the file holds one no worker could send (hand-edited): it is the
    admin's to mend, since every worker of the farm was given it."""
    if config.registration_secret:
        return config.registration_secret
    path = config.registration_secret_file()
    if existing := read_secret(path):
        if problem := registration_secret_problem(existing):
            raise ValueError(f"the worker registration secret in {path} cannot be used: {problem}")
        return existing
    if path.exists():  # empty: its writer (an older Manager) died before writing it; no worker can use it
        log.warning("%s was empty; a new worker registration secret was written to it", path)
    secret = secrets.token_urlsafe(32)
    write_secret(path, secret)
    return secret


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "WorkerBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "worker_id:secret as handed out by /api/v1/worker/register",
    },
    "ServerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "a user's API token of the Server this Manager works for (checked with that Server)",
    },
}


def _secured_by(path: str) -> str | None:
    if path in ("/api/v1/health", "/api/v1/worker/register"):
        return None
    return "WorkerBasic" if path.startswith("/api/v1/worker/") else "ServerToken"


def create_app(config: ManagerConfig) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        conn = connect(store_path(config.data_dir))
        core = ManagerCore(conn, config)
        client = ManagerClient(config.server_url, config.token, ca_bundle=config.ca_bundle, store_id=store_id(conn))
        link = ServerLink(core, client)
        app.state.core = core
        app.state.link = link
        app.state.registration_secret = registration_secret(config)
        app.state.client_tokens = ClientTokens(
            client,
            config.client_token_cache_seconds,
            config.client_token_offline_seconds,
            Backoff(free=config.auth_free_failures),
        )
        app.state.registration_backoff = Backoff(free=config.auth_free_failures)
        app.state.failed = False
        runner = asyncio.create_task(link.run(), name="server-link")
        runner.add_done_callback(lambda task: _link_ended(app, task))
        try:
            yield
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)  # its failure was logged when it happened
            try:
                await link.give_back(within=1.0)  # the Server is still up when a local farm stops
            finally:
                await client.aclose()
                conn.close()

    app = FastAPI(
        title="Tablao Manager",
        version=VERSION,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        # another spelling of a path (a trailing slash) is a 404, not a redirect to an address built from the
        # request's Host header (Starlette's default), which a client need not trust
        redirect_slashes=False,
    )
    app.include_router(worker.router)
    app.include_router(clients.router)
    api_contract.install_error_shape(app)
    api_contract.document_errors(app, EXTRA_STATUSES, SECURITY_SCHEMES, _secured_by)
    api_contract.serve_docs_offline(app, "/api/v1")
    # added before the body limit, which so wraps them: the hot route's bodies are counted and guarded too
    app.add_middleware(HotRoute, method="POST", path="/api/v1/worker/task", handler=worker.ask_for_task)
    app.add_middleware(InputGuard, name_field=api_contract.indexed)
    # anyone may register (the secret is in the body): a secret, a name and a platform
    public = {("POST", "/api/v1/worker/register"): PUBLIC_BODY_BYTES}
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, route_limits=public)
    # outside the others: a write without good credentials is refused before its body is read (registering needs
    # none)
    app.add_middleware(
        CredentialsFirst,
        public={"/api/v1/worker/register"},
        wanted=wanted_at,
        service=app,
        vouch=lambda scope, authorization: door.vouch(app.state, scope, authorization),
    )
    app.add_middleware(HeadAsGet)  # HEAD goes through everything as GET does
    app.add_middleware(AnswerWhenStopping)  # the very outermost: a request still open at a stop is a 503

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        errors = [FieldError(field=exc.field, message=exc.message)] if exc.field else []
        body = ErrorResponse(detail=exc.message, errors=errors)
        # the scheme the route wants: a worker's Basic under /worker/, a user's Bearer token elsewhere
        headers = {"WWW-Authenticate": wanted_at(_request.url.path).scheme} if exc.status_code == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = retry_after_header(exc.retry_after)
        elif isinstance(exc, Superseded):
            headers = {SUPERSEDED_HEADER: "1"}
        elif isinstance(exc, NotSignedOn):
            headers = {SIGN_ON_HEADER: "1"}
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(sqlite3.OperationalError)
    async def store_failed(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        problem = disk_problem(exc, store_path(config.data_dir))
        if problem is None:
            raise exc  # a 500, logged with its traceback
        # one line a minute with the link's (every worker's every request is refused on a full disk), and the
        # link claims nothing until the store takes writes again
        request.app.state.link.store.failed(exc, "requests are answered 503")
        body = ErrorResponse(detail=f"the Manager cannot store anything now: {problem}; try again later")
        return JSONResponse(body.model_dump(), status_code=503, headers=retry_after_header(STORE_RETRY_AFTER))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        errors = [
            FieldError(field="body", message=api_contract.SEND_AS_JSON)
            if api_contract.body_not_sent_as_json(request, e)
            else _field_error(e)
            for e in found[: api_contract.ERRORS_SHOWN]
        ]
        detail = api_contract.error_detail([(e.field, e.message) for e in errors], len(found))
        return JSONResponse(
            ErrorResponse(detail=detail or "invalid request", errors=errors).model_dump(), status_code=422
        )

    return app


def _link_ended(app: FastAPI, task: asyncio.Task[None]) -> None:
    """The link to the Server stopped by itself (a bug: its loops outlive the Server's and the store's troubles):
    a Manager without it would hand out tasks whose leases nobody renews. Stop it, with a failure exit (cli.py),
    so that its supervisor starts it again from its store."""
    if task.cancelled():
        return
    exc = task.exception()
    log.critical("the link to the Server stopped; the Manager stops", exc_info=exc)
    app.state.failed = True
    stop = getattr(app.state, "stop_serving", None)
    if stop is not None:
        stop()


def _field_error(err: Any) -> FieldError:
    if (malformed := api_contract.malformed_json(err)) is not None:
        return FieldError(field="body", message=malformed)
    loc = tuple(p for p in err.get("loc", ()) if p not in ("body", "query", "path"))
    return FieldError(field=api_contract.indexed(loc), message=api_contract.error_message(err))

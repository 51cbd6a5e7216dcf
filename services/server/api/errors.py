"""Turns every error into `{"detail": ..., "errors": [{"field", "message"}]}` with the right HTTP status."""

from __future__ import annotations

import difflib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from services.protocol import api_contract
from services.protocol.backoff import retry_after_header
from services.server.states.jobs import IllegalJobAction, IllegalJobTransition
from services.server.states.tasks import IllegalTaskTransition
from services.server.store.errors import StoreError
from services.server.store.tasks import IllegalTaskAction

log = logging.getLogger(__name__)


def error_body(detail: str, errors: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "errors": [{"field": f, "message": m} for f, m in errors or []]}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [api_contract.field_part(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def _likely_field(request: Request, unknown: str) -> str:
    """'; did you mean 'settings'?' for a body's unknown top-level field close to one of the route's model (a job
    file's `setings` was "Extra inputs are not permitted" alone; a setting's own typo already said more)."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    known = list(getattr(model, "model_fields", None) or ())
    close = difflib.get_close_matches(unknown.lower(), known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# statuses the rule of thumb in api_contract._statuses does not see (route -> extra statuses)
EXTRA_STATUSES: dict[str, set[int]] = {
    "POST /api/v1/auth/login": {401, 429},
}


def install(app: FastAPI) -> None:
    api_contract.install_error_shape(app)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if exc.retry_after is not None:  # too many attempts (429), a job still being stored (409)
            headers = retry_after_header(exc.retry_after)
        return JSONResponse(error_body(exc.message, exc.errors), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        found = exc.errors()
        for err in found[: api_contract.ERRORS_SHOWN]:
            field = _loc(tuple(err.get("loc", ())))
            msg = api_contract.error_message(err)
            if (malformed := api_contract.malformed_json(err)) is not None:
                field, msg = "body", malformed
            elif api_contract.body_not_sent_as_json(request, err):
                field, msg = "body", api_contract.SEND_AS_JSON
            elif err.get("type") == "extra_forbidden" and len(err.get("loc", ())) == 2:
                msg += _likely_field(request, str(err["loc"][1]))
            errors.append((field, msg))
        detail = api_contract.error_detail(errors, len(found))
        return JSONResponse(error_body(detail or "invalid request", errors), status_code=422)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (PostgreSQL: a number out of a column's range, a string over its length):
        # the wire models bound every field to what its column holds, so this is a gap in them, and the
        # transaction has rolled back. The client still gets a 4xx saying so, not a 500.
        log.warning("the database refused a value of %s %s: %s", request.method, request.url.path, exc)
        reason = str(exc.orig or exc).splitlines()[0][:200]
        msg = f"a value is out of what the database can store ({reason})"
        return JSONResponse(error_body(msg, [("body", msg)]), status_code=422)

    @app.exception_handler(IllegalTaskTransition)
    @app.exception_handler(IllegalTaskAction)
    @app.exception_handler(IllegalJobAction)
    @app.exception_handler(IllegalJobTransition)
    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(str(exc), [("status", str(exc))]), status_code=409)

"""Database failures during a request, answered in plain words: 507 for a full disk, 503 for a damaged,
unreachable or busy database, instead of an anonymous 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.server.api.errors import error_body
from services.server.db.problems import DATABASE_ERRORS, describe, kind, safe_url

log = logging.getLogger("tablao.server.storage")
_STATUS = {"full": 507, "damaged": 503, "unreachable": 503, "busy": 503}
BUSY_RETRY_AFTER = 1  # seconds


def install(app: FastAPI) -> None:
    async def storage_problem(request: Request, exc: Exception) -> JSONResponse:
        found = kind(exc)
        if found is None:
            raise exc  # not the storage's fault: the generic 500 handling applies
        where = safe_url(str(request.app.state.engine.url))
        awake = getattr(request.app.state, "awake", None)
        if awake is not None:  # a Manager's batch refused now renewed no lease: the lease sweep waits for it
            awake.storage_refused()
        log.error("%s %s: %s", request.method, request.url.path, describe(exc, where) or str(exc))
        # the client hears what happened, not where: the database's host, port, role and name are the admin's
        message = describe(exc, "of this Server", detail=False) or "the Server's database failed"
        # busy: this Server works, and the same request will most likely go through in a moment (a Manager
        # asks this Server again rather than taking it for lost)
        headers = {"Retry-After": str(BUSY_RETRY_AFTER)} if found == "busy" else None
        return JSONResponse(error_body(message), status_code=_STATUS[found], headers=headers)

    for error in DATABASE_ERRORS:
        if error is not OSError:  # an OSError is the database's only when it carries its error (ENOSPC)
            app.add_exception_handler(error, storage_problem)

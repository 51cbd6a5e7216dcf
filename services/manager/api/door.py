"""The Manager's word on credentials before a write's body is read (services/protocol/credentials_first.py).

A route under `/api/v1/worker/` takes a worker's Basic id and secret, every other write a user's token of the
Server: credentials the route would refuse (an unknown worker or a wrong secret; a token the Server does not
know, or cannot be asked about) are refused here as the route would refuse them, before up to 8 MiB is read. A
worker's secret is checked against the roster in memory (a hash and a dictionary look-up: the hot route's
cost is next to nothing); a token goes through the routes' own cache of the Server's answers. Nothing of the
call is noted here (last heard, which process): the route does that once the body has arrived.
"""

from __future__ import annotations

from starlette.datastructures import State
from starlette.types import Scope

from services.manager.api.deps import WORKER_PATHS, basic_credentials, client_identity, wanted_at
from services.manager.core import ManagerCore
from services.manager.errors import ApiError, TooManyAttempts
from services.protocol.backoff import retry_after_header
from services.protocol.credentials_first import Refusal


async def vouch(state: State, scope: Scope, authorization: str) -> Refusal | None:
    """How the route of `scope` would refuse these credentials, or None when it would take them."""
    path: str = scope["path"]
    address = scope["client"][0] if scope.get("client") else "unknown"
    try:
        if path.startswith(WORKER_PATHS):
            core: ManagerCore = state.core
            core.workers.check_secret(*basic_credentials(authorization))
        else:
            await client_identity(state.client_tokens, authorization, address)
    except TooManyAttempts as exc:
        return Refusal(429, exc.message, exc.field or None, retry_after_header(exc.retry_after))
    except ApiError as exc:
        headers = {"www-authenticate": wanted_at(path).scheme} if exc.status_code == 401 else {}
        return Refusal(exc.status_code, exc.message, exc.field or None, headers)
    return None

"""Dependencies of the Manager's routers: the core, worker authentication, client token checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Annotated

from fastapi import Depends, Request

from services.manager.core import ManagerCore
from services.manager.errors import Unauthorized, Unavailable
from services.manager.model import WorkerState
from services.protocol.link import ClientIdentity
from services.protocol.manager_client import LinkError, ManagerClient


async def get_core(request: Request) -> ManagerCore:
    core: ManagerCore = request.app.state.core
    return core


CoreDep = Annotated[ManagerCore, Depends(get_core)]


async def authenticated_worker(request: Request) -> WorkerState:
    """HTTP Basic worker_id:secret, as handed out by /api/v1/worker/register."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("HTTP Basic authorization with worker_id:secret is required", "authorization")
    try:
        worker_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic authorization", "authorization") from exc
    core: ManagerCore = request.app.state.core
    return core.workers.authenticate(worker_id, secret)


WorkerDep = Annotated[WorkerState, Depends(authenticated_worker)]


class ClientTokens:
    """Checks client API tokens with the Server once and remembers the answer for a while."""

    def __init__(self, client: ManagerClient, ttl: float) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ClientIdentity | None]] = {}

    async def identify(self, token: str) -> ClientIdentity:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is None or hit[0] < now:
            try:
                who = await self.client.check_client_token(token)
            except LinkError as exc:
                if hit is not None and hit[1] is not None:
                    return hit[1]  # the Server is away: a token it confirmed before still counts
                raise Unavailable("cannot check the token: the Server is not reachable", "authorization") from exc
            # unknown tokens are remembered briefly so a flood of bad tokens does not flood the Server
            self._cache[key] = (now + (self.ttl if who else 5.0), who)
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = self._cache[key]
        if hit[1] is None:
            raise Unauthorized("unknown or revoked API token", "authorization")
        return hit[1]


async def authenticated_client(request: Request) -> ClientIdentity:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a Server API token is required: Authorization: Bearer <token>", "authorization")
    tokens: ClientTokens = request.app.state.client_tokens
    return await tokens.identify(token.strip())


ClientDep = Annotated[ClientIdentity, Depends(authenticated_client)]

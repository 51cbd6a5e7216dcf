"""Dependencies of the Manager's routers: the core, worker authentication, client token checks."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Annotated

from fastapi import Depends, Request

from services.manager.core import ManagerCore
from services.manager.errors import Invalid, TooManyAttempts, Unauthorized, Unavailable
from services.manager.model import WorkerState
from services.protocol.backoff import Backoff
from services.protocol.common import utcnow
from services.protocol.credentials_first import Wanted
from services.protocol.link import TOKEN_MAX_CHARS, ClientIdentity
from services.protocol.manager_client import LinkError, ManagerClient
from services.protocol.worker_api import INSTANCE_HEADER, INSTANCE_PATTERN

_INSTANCE = re.compile(INSTANCE_PATTERN)
# a request without credentials; also the answer of the door (credentials_first.py) to a write without them
NEEDS_WORKER = Wanted("Basic", "HTTP Basic authorization with worker_id:secret is required", "authorization")
NEEDS_TOKEN = Wanted("Bearer", "a Server API token is required: Authorization: Bearer <token>", "authorization")
WORKER_PATHS = "/api/v1/worker/"


def wanted_at(path: str) -> Wanted:
    """What a route of `path` wants: a worker's Basic credentials under /worker/, a user's token elsewhere."""
    return NEEDS_WORKER if path.startswith(WORKER_PATHS) else NEEDS_TOKEN


async def get_core(request: Request) -> ManagerCore:
    core: ManagerCore = request.app.state.core
    return core


CoreDep = Annotated[ManagerCore, Depends(get_core)]


async def authenticated_worker(request: Request) -> WorkerState:
    """HTTP Basic worker_id:secret, as handed out by /api/v1/worker/register; a process that another one signed
    on after with the same identity is refused (409, worker_api.INSTANCE_HEADER)."""
    worker_id, secret = _basic(request)
    core: ManagerCore = request.app.state.core
    return core.workers.authenticate(worker_id, secret, calling_instance(request))


async def signing_on_worker(request: Request) -> WorkerState:
    """As authenticated_worker, for the sign-on: any process of the worker may sign on; the route makes it the
    worker's once the sign-on is accepted (a refused one, its body invalid, takes nothing from the running one)."""
    worker_id, secret = _basic(request)
    core: ManagerCore = request.app.state.core
    return core.workers.authenticate(worker_id, secret, signing_on=True)


def calling_instance(request: Request) -> str | None:
    """The calling process's number (None from a worker that sends none: older workers, scripts)."""
    value = request.headers.get(INSTANCE_HEADER)
    if value is not None and not _INSTANCE.fullmatch(value):
        raise Invalid(f"{INSTANCE_HEADER} must be 1 to 64 letters, digits, '-' or '_'", INSTANCE_HEADER.lower())
    return value


def _basic(request: Request) -> tuple[str, str]:
    return basic_credentials(request.headers.get("authorization", ""))


def basic_credentials(header: str) -> tuple[str, str]:
    """The worker id and secret of an `Authorization: Basic …` header; Unauthorized when it is not one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized(NEEDS_WORKER.message, NEEDS_WORKER.field)
    try:
        worker_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except ValueError as exc:  # binascii.Error, UnicodeDecodeError, and characters beyond ASCII in the header
        raise Unauthorized("malformed Basic authorization", "authorization") from exc
    return worker_id, secret


WorkerDep = Annotated[WorkerState, Depends(authenticated_worker)]
SigningOnWorkerDep = Annotated[WorkerState, Depends(signing_on_worker)]


class ClientTokens:
    """Checks client API tokens with the Server and remembers the answer briefly.

    The bound on revocation: while the Server is reachable, a token revoked there stops working here within
    `ttl` seconds (and an expired one at its expiry). While the Server is away, only tokens the Server
    confirmed within the last `offline` seconds are accepted; a token never confirmed, or refused, is not.
    """

    def __init__(self, client: ManagerClient, ttl: float, offline: float, backoff: Backoff) -> None:
        self.client = client
        self.ttl = ttl
        self.offline = offline
        self.backoff = backoff
        # sha256 of the token -> (when the Server last answered, trusted until, who or None)
        self._cache: dict[str, tuple[float, float, ClientIdentity | None]] = {}

    async def identify(self, token: str, address: str) -> ClientIdentity:
        if len(token) > TOKEN_MAX_CHARS:
            raise Unauthorized("unknown or revoked API token", "authorization")
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is None or hit[1] <= now:
            wait = self.backoff.retry_after(address)
            if wait and (hit is None or hit[2] is None):
                raise TooManyAttempts(
                    f"too many bad API tokens from this address: try again in {wait:.0f} s", wait, "authorization"
                )
            try:
                who = await self.client.check_client_token(token)
            except LinkError as exc:
                if hit is not None and hit[2] is not None and now - hit[0] <= self.offline:
                    return _unexpired(hit[2])  # the Server is away: a recent confirmation still counts
                raise Unavailable("cannot check the token: the Server is not reachable", "authorization") from exc
            # unknown tokens are remembered briefly so a flood of bad tokens does not flood the Server
            trusted = self.ttl if who else 5.0
            if who is not None and who.expires is not None:
                trusted = min(trusted, (who.expires - utcnow()).total_seconds())
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = self._cache[key] = (now, now + trusted, who)
            if who is None and (wait := self.backoff.failed(address)):
                raise TooManyAttempts(
                    f"too many bad API tokens from this address: try again in {wait:.0f} s", wait, "authorization"
                )
        if hit[2] is None:
            raise Unauthorized("unknown or revoked API token", "authorization")
        return _unexpired(hit[2])


def _unexpired(who: ClientIdentity) -> ClientIdentity:
    if who.expires is not None and who.expires <= utcnow():
        raise Unauthorized("the API token has expired", "authorization")
    return who


async def authenticated_client(request: Request) -> ClientIdentity:
    tokens: ClientTokens = request.app.state.client_tokens
    address = request.client.host if request.client else "unknown"
    return await client_identity(tokens, request.headers.get("authorization", ""), address)


async def client_identity(tokens: ClientTokens, header: str, address: str) -> ClientIdentity:
    """Who the `Authorization: Bearer …` header sent from `address` stands for, as the Server says."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(NEEDS_TOKEN.message, NEEDS_TOKEN.field)
    return await tokens.identify(token.strip(), address)


ClientDep = Annotated[ClientIdentity, Depends(authenticated_client)]

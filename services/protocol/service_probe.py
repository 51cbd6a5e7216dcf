"""Which Tablao service answers at an address, for the message when a client or a worker was given the wrong one.

Both services answer `GET /api/v1/health` with the same body, so each is told by a route only it has: the
Server's `/api/v1/me` and the Manager's `/api/v1/status` ask for credentials (401) where the other answers 404.
Three small GETs, made only after a call went wrong; any failure to tell is `None`, never an error.
"""

from __future__ import annotations

from enum import StrEnum

import httpx

from services.protocol import API_PREFIX
from services.protocol.tls import client_context

PROBE_TIMEOUT = 3.0


class Service(StrEnum):
    SERVER = "Server"
    MANAGER = "Manager"


async def which_service(base_url: str, *, ca_bundle: str | None = None) -> Service | None:
    """The Tablao service at base_url (scheme, host, port), or None: another program, or no answer."""
    try:
        verify = client_context(ca_bundle) if base_url.startswith("https:") else True
        async with httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API_PREFIX, timeout=PROBE_TIMEOUT, verify=verify
        ) as http:
            health = await http.get("/health")
            if health.status_code != 200 or not _is_health(health):
                return None
            if (await http.get("/me")).status_code != 404:
                return Service.SERVER
            if (await http.get("/status")).status_code != 404:
                return Service.MANAGER
    except (httpx.HTTPError, httpx.InvalidURL, OSError):
        return None
    return None


def _is_health(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok" and "version" in body

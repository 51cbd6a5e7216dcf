"""How the Server and the Manager serve HTTP: uvicorn with a bounded protocol (http_protocol.py), stopping within
a fraction of a second of SIGINT/SIGTERM.

uvicorn's graceful shutdown waits for open connections to close and for their requests to finish; with
keep-alive clients and long polls (workers waiting for a task, Managers waiting for a claim) that is seconds.
Everything a client has been told is durable before the answer goes out, so in-flight requests are cancelled
after a short grace instead (their clients retry); the application's own shutdown (lifespan) still runs.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from services.protocol.http_protocol import BoundedHttpToolsProtocol, idle_seconds_from_env

GRACE_SECONDS = 0.1  # in-flight requests get this long after the listening socket closes


def quick_server(app: Any, **config: Any) -> uvicorn.Server:
    """A uvicorn server for app that cancels open requests GRACE_SECONDS after a stop signal; a bad
    TABLAO_REQUEST_IDLE_SECONDS raises ValueError naming it."""
    config.setdefault("timeout_graceful_shutdown", GRACE_SECONDS)
    config.setdefault("http", BoundedHttpToolsProtocol)
    BoundedHttpToolsProtocol.idle_seconds = idle_seconds_from_env()
    return uvicorn.Server(uvicorn.Config(app, **config))

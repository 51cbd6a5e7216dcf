"""How the Server and the Manager serve HTTP: uvicorn with a bounded protocol (http_protocol.py), stopping within
a fraction of a second of SIGINT/SIGTERM.

uvicorn's graceful shutdown waits for open connections to close and for their requests to finish; with
keep-alive clients and long polls (workers waiting for a task, Managers waiting for a claim) that is seconds.
Everything a client has been told is durable before the answer goes out, so in-flight requests are cancelled
after a short grace instead (their clients retry); the application's own shutdown (lifespan) still runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import uvicorn

from services.protocol.http_protocol import BoundedHttpToolsProtocol, idle_seconds_from_env

GRACE_SECONDS = 0.1  # in-flight requests get this long after the listening socket closes


TRUSTED_PROXIES_ENV = "TABLAO_TRUSTED_PROXIES"


def proxy_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Whose `X-Forwarded-For` names the client. uvicorn believes it from 127.0.0.1 by default, so anything on the
    Server's machine (a task on the all-in-one farm) could claim a new address per request and never meet the
    per-address back-off of bad tokens and logins; only the reverse proxies named in TABLAO_TRUSTED_PROXIES are."""
    proxies = [p.strip() for p in env.get(TRUSTED_PROXIES_ENV, "").split(",") if p.strip()]
    return {"proxy_headers": True, "forwarded_allow_ips": proxies} if proxies else {"proxy_headers": False}


def quick_server(app: Any, **config: Any) -> uvicorn.Server:
    """A uvicorn server for app that cancels open requests GRACE_SECONDS after a stop signal; a bad
    TABLAO_REQUEST_IDLE_SECONDS raises ValueError naming it."""
    for key, value in proxy_settings(os.environ).items():
        config.setdefault(key, value)
    config.setdefault("timeout_graceful_shutdown", GRACE_SECONDS)
    config.setdefault("http", BoundedHttpToolsProtocol)
    # uvicorn's own logging set-up gives its loggers handlers of their own ("INFO:     Started server process"):
    # without it their lines go through the service's, in its format, in one log
    config.setdefault("log_config", None)
    BoundedHttpToolsProtocol.idle_seconds = idle_seconds_from_env()
    made = uvicorn.Config(app, **config)  # configures uvicorn's loggers: the filter goes on after
    logging.getLogger("uvicorn.error").addFilter(_stop_said_plainly)
    return uvicorn.Server(made)


def _stop_said_plainly(record: logging.LogRecord) -> bool:
    """The requests a stop cancels by design (long polls, event streams) are one INFO line, not an ERROR and a
    traceback per request ("Exception in ASGI application" ... CancelledError)."""
    if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
        return "graceful shutdown" not in str(record.exc_info[1])
    if record.levelno >= logging.ERROR and "timeout graceful shutdown exceeded" in record.getMessage():
        count = record.args[0] if isinstance(record.args, tuple) and record.args else "the"
        record.msg, record.args = "stopping: %s open request(s) ended; their clients try again", (count,)
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True

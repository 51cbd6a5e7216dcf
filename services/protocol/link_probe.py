"""At a Manager's start (standalone, or the local farm's): is `--server` a Tablao Server taking its token?

A Manager given a wrong token (another farm's, a Manager's since removed, the admin token) or a Manager's address
for its Server's used to start, announce its address, take workers, and log a refusal once a minute for ever. The
Server's answer to one call is enough to tell: either is a setting to mend, said in one line before anything
starts. A Server that does not answer (not started yet, the network) is waited for, as always.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import httpx

from services.protocol import API_PREFIX, tls

PROBE_SECONDS = 5.0  # a start waits this long at most for a Server that takes the connection and says nothing


def start_problem(urls: Sequence[str], token: str, token_file: object, ca_bundle: str | None = None) -> str | None:
    """What is wrong, as the first of `urls` that answers says it: its refusal of the token read from
    `token_file` (401), or an answer no Tablao Server gives (a Manager's address given as the Server's); else None.

    It asks who holds a made-up client token: a Server taking the Manager's token answers 404 for that one,
    and the Manager is thereby neither marked seen nor given tasks."""
    probe = {"token": "tablao-start-probe-" + secrets.token_urlsafe(16)}
    for url in urls:
        verify = tls.client_context(ca_bundle) if url.startswith("https:") else True
        try:
            with httpx.Client(verify=verify, timeout=PROBE_SECONDS) as http:
                resp = http.post(
                    f"{url}{API_PREFIX}/manager/client-token",
                    json=probe,
                    headers={"Authorization": f"Bearer {token}"},
                )
        except httpx.HTTPError:
            continue  # this one is away: the next, or the Manager's own waiting
        return _problem(url, resp, token_file)
    return None


def _problem(url: str, resp: httpx.Response, token_file: object) -> str | None:
    """What a Server's answer to the probe says is wrong, or None: a 404 naming `token` (the made-up client
    token unknown: the Manager's own taken), a 429 or a 5xx (the Manager waits, as for any Server in trouble)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
    errors = body.get("errors") if isinstance(body, dict) else None
    named = {e.get("field") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()
    if resp.status_code == 401:
        return (
            f"the Server at {url} refuses its token ({detail or 'HTTP 401'}): --token-file {token_file} must hold "
            "the token the Server showed when this Manager was added (tablao managers add NAME, on its machine)"
        )
    if (resp.status_code == 404 and "token" in named) or resp.status_code == 429 or resp.status_code >= 500:
        return None
    # a Manager's address (404 Not Found), a web page, a proxy's redirect: no Tablao Server's link answers so
    return (
        f"{url} does not answer as a Tablao Server (HTTP {resp.status_code} to the Manager link's "
        f"{API_PREFIX}/manager/client-token): is --server the Server's address, not a Manager's or another program's?"
    )

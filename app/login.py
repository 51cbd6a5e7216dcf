"""Remembered API tokens: checked before one skips the login, and forgotten once the Server refuses it.

A token kept in the keyring lets the app start without asking; when the token was revoked, expired or its user
disabled, it must not keep skipping the login (showing a window that can only say "not authorised").
"""

from __future__ import annotations

import httpx

from app.models.sync import ConnectionState, FarmSync
from app.secrets import forget_token, load_token
from services.protocol.server_client import ApiError, ServerClient

REFUSED = (
    "The Server refused the token this app remembered for {url} (revoked, expired, or its user disabled), "
    "so it was forgotten: log in again."
)


def forget_if_remembered(server_url: str, token: str) -> bool:
    """Forget the keyring's token for `server_url` when it is `token` (not a newer one); True when forgotten."""
    if token and load_token(server_url) == token:
        forget_token(server_url)
        return True
    return False


async def check_remembered(server_url: str, token: str) -> bool | None:
    """True: the Server accepts the token. False: it refuses it (401), and the token is forgotten now.
    None: the Server did not say (unreachable, busy): the token is kept and the window keeps trying."""
    try:
        async with ServerClient(server_url, token, timeout=10.0) as client:
            await client.me()
    except ApiError as exc:
        if exc.status_code == 401:
            forget_if_remembered(server_url, token)
            return False
        return None
    except (httpx.HTTPError, OSError):
        return None
    return True


def forget_when_refused(sync: FarmSync, server_url: str, token: str) -> None:
    """Once the Server refuses the window's token (revoked while the app runs), forget it from the keyring."""

    def changed(state: str) -> None:
        if state == ConnectionState.UNAUTHORIZED and forget_if_remembered(server_url, token):
            sync.error.emit(REFUSED.format(url=server_url))

    sync.state_changed.connect(changed)

"""API tokens in the system keyring, and an honest answer when there is no secure keyring to keep them in."""

from __future__ import annotations

import contextlib

import keyring
import keyring.errors

SERVICE = "tablao"

NO_KEYRING = (
    "No secure keyring was found on this computer (e.g. GNOME Keyring, KWallet, macOS Keychain or Windows "
    "Credential Locker). The token is kept for this session only and you will be asked again next time; "
    "it is never written to a plain settings file."
)


def secure_keyring() -> bool:
    """True when a real, encrypted keyring backend is active (not the fail, null or plain-text ones)."""
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}".lower()
    if any(word in name for word in ("fail", "null", "plaintext", "uncrypted")):
        return False
    inner = getattr(backend, "backends", None)
    if inner is not None and not inner:  # a chainer with nothing to chain
        return False
    return float(getattr(backend, "priority", 1)) > 0


def save_token(server_url: str, token: str) -> bool:
    """Keep the token for this Server; False when it could not be kept securely (nothing is written then)."""
    if not secure_keyring():
        return False
    try:
        keyring.set_password(SERVICE, server_url, token)
    except keyring.errors.KeyringError:
        return False
    return True


def load_token(server_url: str) -> str | None:
    if not secure_keyring():
        return None
    try:
        return keyring.get_password(SERVICE, server_url)
    except keyring.errors.KeyringError:
        return None


def forget_token(server_url: str) -> None:
    with contextlib.suppress(keyring.errors.KeyringError):
        keyring.delete_password(SERVICE, server_url)

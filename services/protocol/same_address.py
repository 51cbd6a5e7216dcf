"""When two URLs a user typed name the same service: `http://Mgr.lan:80/` and `http://mgr.lan`, or
`http://localhost:8471` and `http://127.0.0.1:8471` on one machine.

A worker's identity at its Manager and the tray's registration secret are kept per Manager URL; kept under the
exact text, a slash, a capital or `localhost` for `127.0.0.1` lost them, and a worker registered anew (its old
self left offline at the Manager for ever, with its sleep schedule and tags)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# one machine's own addresses: a service listening on a loopback port is found under any of these names
LOOPBACK = {"localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"}


def address_key(url: str) -> str:
    """`url` as one text per service: scheme and host in lower case, a loopback host as `localhost`, the
    scheme's default port left out, no trailing slash. A URL that cannot be read is only stripped of its slash."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text.rstrip("/")
    if not parts.scheme or not parts.hostname:
        return text.rstrip("/")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower().rstrip(".")
    host = "localhost" if _loopback(host) else f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, parts.fragment))


def same_address(a: str, b: str) -> bool:
    return address_key(a) == address_key(b)


def on_this_machine(a: str, b: str) -> bool:
    """Both URLs name a service on this machine's loopback, by the same scheme, whatever their ports: the local farm
    started on another port (`make run PORT=8480`) is the same Manager, its store and workers kept."""
    try:
        first, second = urlsplit(a.strip()), urlsplit(b.strip())
        hosts = (first.hostname or "").lower(), (second.hostname or "").lower()
    except ValueError:
        return False
    return all(map(_loopback, hosts)) and first.scheme.lower() == second.scheme.lower()


def _loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")

"""TLS between Tablao's components: client contexts from a CA bundle, and the rule for plain HTTP.

Services take a certificate and key (`--tls-cert`, `--tls-key`); clients take a CA bundle (`--ca-bundle`, or
TABLAO_CA_BUNDLE for every client of a machine, the desktop app included). Plain HTTP stays the default on
loopback only: a service asked to listen elsewhere without TLS refuses, unless forced with --insecure-http.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from pathlib import Path

CA_ENV = "TABLAO_CA_BUNDLE"


def client_context(ca_bundle: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A verifying client context: the given bundle, else TABLAO_CA_BUNDLE, else the system's CAs."""
    bundle = ca_bundle or os.environ.get(CA_ENV) or None
    if bundle is not None and not Path(bundle).is_file():
        raise FileNotFoundError(f"CA bundle {bundle} not found")
    return ssl.create_default_context(cafile=str(bundle) if bundle else None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_problem(
    host: str,
    cert: Path | None,
    key: Path | None,
    *,
    insecure_http: bool,
    flag_prefix: str = "--",
    check_files: bool = True,
) -> str | None:
    """Why the service must not start with these settings, or None. `check_files` False: the certificate and key
    are another machine's (a service unit written for it), so only the settings themselves are checked."""
    if (cert is None) != (key is None):
        return f"{flag_prefix}tls-cert and {flag_prefix}tls-key go together: give both or neither"
    for label, path in (("tls-cert", cert), ("tls-key", key)):
        if check_files and path is not None and not path.is_file():
            return f"{flag_prefix}{label}: {path} not found"
    if cert is None and not is_loopback(host) and not insecure_http:
        return (
            f"listening on {host} without TLS would send tokens and secrets in clear over the network; give "
            f"{flag_prefix}tls-cert and {flag_prefix}tls-key (see docs/security.md), or {flag_prefix}insecure-http "
            "on a network you trust completely"
        )
    return None


def scheme(cert: Path | None) -> str:
    return "https" if cert is not None else "http"


def tls_args(parser: argparse.ArgumentParser, *, client: bool) -> None:
    """--tls-cert/--tls-key to serve https; --ca-bundle to verify the service this one calls."""
    group = parser.add_argument_group("TLS (docs/security.md)")
    group.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve https with this certificate (chain)")
    group.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")
    group.add_argument(
        "--insecure-http", action="store_true",
        help="allow plain http on a non-loopback address (tokens cross the network in clear)",
    )  # fmt: skip
    if client:
        group.add_argument("--ca-bundle", metavar="PEM", help=f"CA certificates to verify https peers (or {CA_ENV})")

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
    """A verifying client context: the given bundle, else TABLAO_CA_BUNDLE, else the system's CAs. An OSError
    naming the bundle when it is not there or holds no certificate."""
    bundle = ca_bundle or os.environ.get(CA_ENV) or None
    if bundle is not None and not Path(bundle).is_file():
        raise FileNotFoundError(f"CA bundle {bundle} not found")
    try:
        return ssl.create_default_context(cafile=str(bundle) if bundle else None)
    except ssl.SSLError as exc:  # a key, a certificate request, not PEM at all: OpenSSL's words, no file named
        raise OSError(f"CA bundle {bundle}: no CA certificate in it ({_reason(exc)})") from None


def ca_bundle_problem(ca_bundle: str | os.PathLike[str] | None) -> str | None:
    """Why a service's --ca-bundle (else TABLAO_CA_BUNDLE) cannot be used, or None: said at its start, not as a
    traceback at its first call."""
    try:
        client_context(ca_bundle)
    except OSError as exc:
        return str(exc) if ca_bundle else f"{CA_ENV}: {exc}"
    return None


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc).replace("_", " ").lower()


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
    if check_files and cert is not None and key is not None:
        asked: list[bool] = []

        def passphrase() -> bytes:  # never a prompt on the terminal (uvicorn's load would wait at one)
            asked.append(True)
            return b""

        try:  # as the server will load them, after its start was announced: a traceback then
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=passphrase)
        except ssl.SSLError as exc:
            if asked:
                return f"{flag_prefix}tls-key {key} is encrypted with a passphrase: give the key without one"
            return (
                f"{flag_prefix}tls-cert {cert} and {flag_prefix}tls-key {key} are not a PEM certificate (chain) and "
                f"its private key ({_reason(exc)})"
            )
        except OSError as exc:
            return f"{flag_prefix}tls-cert {cert}, {flag_prefix}tls-key {key}: {exc.strerror or exc}"
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

"""Checkers of command-line and environment values shared by the services' CLIs (argparse `type=` functions).

Each raises `BadValue`, which argparse reports as `argument --x: <message>` and which is also a ValueError, so
code reading the same values from the environment catches it like any bad conversion.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import httpx

from services.protocol import variable_names
from services.protocol.named_files import MIB, UnreadableFile, read_named_text
from services.protocol.terminal_text import first_control


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A value out of range or malformed; its message says what is expected."""


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise BadValue(f"{text!r} is not {'a whole' if kind is int else 'a'} number") from None
    if not math.isfinite(value):
        raise BadValue(f"{text!r} is not a finite number")
    return value


def _at_least(text: str, kind: type[int] | type[float], least: float, strict: bool) -> float:
    value = _number(text, kind)
    if value < least or (strict and value == least):
        what = "a whole number" if kind is int else "a finite number"
        raise BadValue(f"must be {what} {'>' if strict else '>='} {least:g}, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a duration, an interval)."""
    return float(_at_least(text, float, 0, strict=True))


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return float(_at_least(text, float, 0, strict=False))


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return int(_at_least(text, int, 1, strict=False))


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return int(_at_least(text, int, 0, strict=False))


def whole_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number within low..high (an id, a page's size), refused at the command line with
    the bounds rather than after a round trip in the Server's words."""

    def read(text: str) -> int:
        value = int(_number(text, int))
        if not low <= value <= high:
            raise BadValue(f"must be a whole number from {low:,} to {high:,}, not {text!r}")
        return value

    return read


def file_path(text: str) -> Path:
    """A file's path as given; an empty one is refused (Path("") is ".", and "cannot read .: Is a directory" said
    nothing of the empty argument)."""
    if not text.strip():
        raise BadValue("give a file's path (it is empty)")
    return Path(text)


def limit(text: str) -> int | None:
    """A whole number >= 1, or `none` for no limit."""
    return None if text.strip().lower() == "none" else positive_int(text)


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise BadValue(f"{text!r} is not a port (0..65535)")
    return value


def listen_host(text: str) -> str:
    """An address to listen on (`--host`): a name or an IP address, an IPv6 one with or without its URL brackets
    (`[::1]` -> `::1`), so the value checked is the value bound."""
    host = text
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise BadValue(f"{text!r} has unbalanced brackets; give an IPv6 address as ::1 or [::1]")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadValue(f"{text!r}: only an IPv6 address goes in brackets") from None
    if not host:
        raise BadValue("an address to listen on is needed, e.g. 127.0.0.1, 0.0.0.0 or ::1")
    if any(c.isspace() or c in "/\\[]" for c in host):
        raise BadValue(f"{text!r} is not an address to listen on (a host name or IP address, without spaces or '/')")
    return host


def url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def http_url(text: str) -> str:
    """An http:// or https:// URL with a host, a valid port and perhaps a path (a reverse proxy's prefix), but no
    user info, query or fragment; returned stripped of spaces and a final '/'."""
    url = text.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadValue(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not url.lower().startswith(("http://", "https://")):
        raise BadValue(f"{url!r} is not an http:// or https:// URL")
    if not parsed.host or any(c.isspace() for c in url):
        raise BadValue(f"{url!r} names no valid host")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise BadValue(f"{url!r}: port {parsed.port} is not within 1..65535")
    # a user name or password here would sit in unit files and process lists, and the services send their own
    # credentials; a query or fragment would swallow the API path the clients add after the URL
    if parsed.userinfo:
        raise BadValue(f"{_without_userinfo(parsed)!r}: a URL must not carry a user name or password")
    if parsed.query or "?" in url:
        raise BadValue(f"{url!r}: a URL must not carry a query ('?...'); give scheme, host, port and path only")
    if parsed.fragment or "#" in url:
        raise BadValue(f"{url!r}: a URL must not carry a fragment ('#...'); give scheme, host, port and path only")
    return url


def _without_userinfo(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None))


def path_variables(text: str | Path) -> dict[str, dict[str, str]]:
    """A path-variables JSON file (`{"render_root": {"linux": "/r", "windows": "R:\\\\"}}`), its shape checked."""
    path = Path(text)
    try:
        data = json.loads(read_named_text(path, MIB, "a path-variables JSON file"))
    except UnreadableFile as exc:
        raise BadValue(str(exc)) from None
    except ValueError as exc:
        raise BadValue(f"{path} is not JSON: {exc}") from None
    except RecursionError:  # json's parser recurses into each nested array or object
        raise BadValue(f"{path} is nested too deeply to be a path-variables file") from None
    ok = isinstance(data, dict) and all(
        isinstance(name, str)
        and isinstance(table, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in table.items())
        for name, table in data.items()
    )
    if not ok:
        raise BadValue(f"{path}: path variables must map names to {{platform: value}} tables of strings")
    if len(data) > variable_names.REPORTED_MAX:  # a Manager tells the Server their names: it takes this many
        raise BadValue(f"{path}: {len(data)} path variables; a farm may have at most {variable_names.REPORTED_MAX}")
    for name, table in data.items():
        # a value with a NUL was taken, and then every task failed with "embedded null byte"
        if not name.strip():
            raise BadValue(f"{path}: a path variable has an empty name")
        for where in (name, *table):
            if first_control(where) is not None:
                raise BadValue(f"{path}: the path variable name or platform {where!r} holds a control character")
        for platform, value in table.items():
            if first_control(value) is not None:
                raise BadValue(
                    f"{path}: path variable {name!r} on {platform!r} holds a control character or bytes that are "
                    "not text; a path cannot"
                )
    return {name: dict(table) for name, table in data.items()}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that names a misspelt option before a required one it left missing: `--manger URL` was
    reported as "the following arguments are required: --manager", the typo unmentioned."""

    _argv: list[str]

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        super().error(self.explained(message))

    def explained(self, message: str) -> str:
        """argparse's message, or the unknown options when those are what left a required one missing."""
        if message.startswith("the following arguments are required") and (unknown := self._unknown_options()):
            close = difflib.get_close_matches(unknown[0], list(self._option_string_actions), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"unrecognized arguments: {' '.join(unknown)}{hint}"
        return message

    def _unknown_options(self) -> list[str]:
        known = self._option_string_actions
        unknown = []
        for arg in getattr(self, "_argv", []):
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if not name.startswith("-") or name == "-" or name in known:
                continue
            if self.allow_abbrev and name.startswith("--") and any(o.startswith(name) for o in known):
                continue
            if name[1:2].isdigit():
                continue  # a negative number, a value
            unknown.append(name)
        return unknown

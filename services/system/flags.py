"""Checks a service unit's flags (those after `--`) as the service will at its start, before the unit is written.

A unit whose service refuses its flags would only crash-loop under systemd or launchd, so `tablao service install`
parses them with the service's own parser (its message is the one shown) and refuses what the service would refuse
at once without side effects: a non-loopback --host without TLS (services/protocol/tls.py `listen_problem`, as the
Server and Manager check it), a --server or --manager that is no http(s) URL, and --port 0 (fine for a test, but
a unit would listen somewhere new at each boot). The tray is not a service role.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Callable

from services.protocol import tls
from services.protocol.cli_args import http_url
from services.protocol.manager_client import server_urls

DATA_DIR_BEFORE = "give --data-dir before `--`, as an option of `tablao service`"


def _parse(role: str, argv: list[str]) -> argparse.Namespace | str:
    """The service's own parse of `argv`, or its one-line refusal (usage and help printed nowhere)."""
    parse: Callable[[list[str]], argparse.Namespace]
    refusals: tuple[type[Exception], ...] = ()
    if role == "server":
        from services.server.cli import build_parser as server_parser

        parse = server_parser().parse_args
    elif role == "manager":
        from services.manager.cli import parse_args as parse
    else:
        from services.worker.cli import UsageError
        from services.worker.cli import build_parser as worker_parser

        parse, refusals = worker_parser().parse_args, (UsageError,)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return parse(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help or the like: the service would print it and stop at every start
            return "they ask it for its help, so it would print that and exit at every start"
        lines = printed.getvalue().strip().splitlines()
        return lines[-1].split(": error: ", 1)[-1] if lines else "they are not its flags"
    except refusals as exc:
        return str(exc)


def flags_problem(role: str, flags: list[str], *, data_dir: str, check_files: bool) -> str | None:
    """Why `tablao ROLE --data-dir DATA_DIR FLAGS` would refuse to start, as far as that is known without side
    effects; None if not.

    `check_files` False (a unit written under --root for another machine): its certificate files are not looked
    for here."""
    parsed = _parse(role, ["--data-dir", data_dir, *flags])
    if isinstance(parsed, str):
        if not flags:  # "refuses the flags after --" when none were given: say where they go
            return f"`tablao {role}` needs flags, given after `--` (`tablao service install {role} -- FLAGS`): {parsed}"
        return f"`tablao {role}` refuses the flags after `--`: {parsed}"
    if str(parsed.data_dir) != data_dir:
        # `--data-dir=X`, an abbreviation (`--data X`): the service would use X, while the unit's working
        # directory, the folder made for it and `service remove`'s message are the install's --data-dir
        return f"the flags after `--` give the data directory again ({parsed.data_dir}): {DATA_DIR_BEFORE}"
    if role in ("server", "manager") and (
        problem := tls.listen_problem(
            parsed.host, parsed.tls_cert, parsed.tls_key, insecure_http=parsed.insecure_http, check_files=check_files
        )
    ):
        return f"`tablao {role}` would not start: {problem}"
    if role in ("server", "manager") and parsed.port == 0:
        return (
            f"`tablao {role}` --port 0 would listen on another free port at each start, where no "
            f"{'Manager or client' if role == 'server' else 'worker'} could find it; give a fixed port"
        )
    try:
        if role == "manager":
            server_urls(parsed.server)
        elif role == "worker":
            http_url(parsed.manager)
    except ValueError as exc:
        return f"`tablao {role}` would not start: --{'server' if role == 'manager' else 'manager'}: {exc}"
    if role == "worker":
        return _worker_problem(parsed, check_files=check_files)
    return None


def _worker_problem(parsed: argparse.Namespace, *, check_files: bool) -> str | None:
    """The worker's own checks of its flags at its start (its name, tags, thread count, task types; with
    `check_files`, its secret file, programs and --run-as user too): a unit failing them restarted every few
    seconds for ever."""
    from services.worker.cli import UsageError, make_config

    if not check_files:
        # the files and programs named are the other machine's: only the checks of the values themselves
        parsed = argparse.Namespace(**{**vars(parsed), "registration_secret_file": None, "blender": None,
                                       "ffmpeg": None, "ca_bundle": None, "run_as": None})  # fmt: skip
    try:
        make_config(parsed)
    except UsageError as exc:
        return f"`tablao worker` would not start: {exc}"
    return None

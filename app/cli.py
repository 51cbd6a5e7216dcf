"""The `tablao` command: no argument opens the desktop app; subcommands run services and clients.

Nothing here imports Qt: the headless paths (server, manager, worker, all-in-one --headless and the
client commands) must run on machines without it.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable

from services.protocol import EXIT_INTERRUPTED

USAGE = """usage: tablao [COMMAND] [ARGS...]

With no command, opens the desktop app (`tablao desktop [--embedded ...]` with its options).
`tablao --version` prints the version.

Services:
  server          run the Server
  manager         run a Manager
  worker          run a Worker
  all-in-one      a Server, a Manager and local workers on this machine (--headless: no window)
  tray            the tray worker agent: render on this workstation after hours

Clients (each takes --server URL --token-file F; default: the local all-in-one farm):
  submit FILE     submit a job: a JSON job or an Open Job Description template (YAML or JSON)
  jobs            list jobs
  job ID          show a job, its tasks and its log (--action pause|resume|cancel|requeue|requeue-failed)
  task ID         show a task (--action requeue|cancel first)
  workers         the farm's workers (status, task, why idle, tags); one's details; --action sleep|wake|forget …
  log TASK        a task's full log (--all: from the start; -f: follow it)
  job-types [NAME]  the job types, or one's settings and a job of it to start from
  demo            render the sample scene on the farm
  blender-addon --output FILE.zip   make the installable zip of the Blender add-on
  tablao://job/ID                   open the desktop app on a job (the Blender add-on's links)

Services of the operating system (systemd on Linux, launchd on macOS):
  service install server|manager|worker [--user] [--data-dir D] [-- SERVICE FLAGS]
  service remove server|manager|worker [--user]

Administration (on the Server's machine; --data-dir: the Server's or a local farm's folder, or --database-url):
  users add NAME --role admin|wrangler|artist
  users list
  users password NAME   set a user's password (asked for twice; or --password P)
  users disable|enable NAME   refuse a user's logins and tokens, or let them in again
  tokens create USER
  tokens list [USER]    ids, names, last use and expiry (never the secrets)
  tokens revoke ID
  managers add NAME
  managers list
"""


# Subcommands a bundle's windowed programs pass straight through: they are how a farm's children are started.
SERVICE_COMMANDS = ("server", "manager", "worker", "all-in-one")


def _run(module: str, function: str, *args: object) -> int:
    """Import the command's module only when it runs: the headless ones must never pull in Qt."""
    entry: Callable[..., int] = getattr(importlib.import_module(module), function)
    return int(entry(*args))


def version() -> str:
    """The installed distribution's version (the bundle carries its metadata too)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("tablao")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _open_link(link: str, rest: list[str]) -> int:
    """`tablao tablao://job/ID`, as a desktop's URL handler runs it: the desktop app opens on that job."""
    from app.job_links import job_of

    job_id = job_of(link)
    if job_id is None:
        print(f"tablao: {link!r} is not a Tablao link (expected tablao://job/ID)", file=sys.stderr)
        return 2
    return _run("app.desktop", "main", ["--open-job", str(job_id), *rest])


def _all_in_one(rest: list[str]) -> int:
    """`tablao all-in-one`: one parser whatever the mode (its --help and errors); without --headless the desktop
    app runs the farm, if there is a display to open its window on."""
    from app.display import missing_display
    from services.localfarm.cli import parse_args

    args = parse_args(rest)
    if args.headless:
        return _run("services.localfarm.cli", "main", rest)
    if missing_display():  # Qt would abort the process (SIGABRT) with a message about reinstalling
        print("tablao all-in-one: no display: run with --headless (make run HEADLESS=1)", file=sys.stderr)
        return 2
    argv = ["--embedded", *(["--data-dir", str(args.data_dir)] if args.data_dir is not None else [])]
    argv += ["--port", str(args.port)] if args.port is not None else []
    argv += ["--workers", str(args.workers)] if args.workers is not None else []
    argv += ["--demo"] if args.demo else []
    for root in args.output_root:
        argv += ["--output-root", root]
    return _run("app.desktop", "main", argv)


ADMIN_COMMANDS = ("users", "tokens", "managers")
CLIENT_COMMANDS = ("submit", "jobs", "job", "task", "log", "job-types", "workers")


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        # Ctrl-C before the command took it over (its modules still loading, a second or so): no traceback
        print("tablao: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: list[str]) -> int:
    # a service started by a supervisor (all-in-one, the app, the tray) dies with it, however it ends
    from services.localfarm.lifeline import hold_from_environment

    hold_from_environment()
    if not args:
        return _run("app.desktop", "main", [])
    command, rest = args[0], args[1:]
    if command.lower().startswith("tablao://"):
        return _open_link(command, rest)
    if command == "help" and rest and not rest[0].startswith("-"):  # `tablao help jobs`: that command's help
        return main([rest[0], "--help"])
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command in ("-V", "--version", "version"):
        print(f"tablao {version()}")
        return 0
    if command == "desktop":
        return _run("app.desktop", "main", rest)
    if command == "all-in-one":
        return _all_in_one(rest)
    if command in ADMIN_COMMANDS:
        return _run("services.server.cli", "admin_main", command, rest)
    if command in CLIENT_COMMANDS:
        return _run("services.client_cli", "main", command, rest)
    if command == "blender-addon":
        return _run("resources.addon_zip", "main", rest)
    modules = {
        "server": "services.server.cli",
        "manager": "services.manager.cli",
        "worker": "services.worker.cli",
        "all-in-one": "services.localfarm.cli",
        "demo": "services.demo",
        "tray": "app.tray.main",
        "service": "services.system.cli",
    }
    if command in modules:
        return _run(modules[command], "main", rest)
    known = [*modules, *ADMIN_COMMANDS, *CLIENT_COMMANDS, "desktop", "blender-addon", "help", "version"]
    if close := difflib.get_close_matches(command, known, n=1):
        # a typo: one line, as for a misspelt option; the whole usage hid the one word that mattered
        print(
            f"tablao: unknown command {command!r} (did you mean {close[0]}?); tablao help lists them", file=sys.stderr
        )
        return 2
    print(f"tablao: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

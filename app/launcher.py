"""The bundle's one entry point: which `tablao` command a program of the PyInstaller bundle runs, by its name.

The bundle has three programs sharing one archive: `tablao` (console: CLI and services), `tablao-desktop` (the
desktop app) and `tablao-tray` (the tray agent), the last two windowed so that Windows opens no console for them.
Children a windowed program starts (the embedded farm's Server, Manager and workers, the tray's worker) run that
same executable with a service subcommand, so those pass straight through to the `tablao` command.
"""

from __future__ import annotations

import sys
from pathlib import PureWindowsPath

from app.cli import SERVICE_COMMANDS, main

DESKTOP, TRAY = "tablao-desktop", "tablao-tray"


def program_argv(program: str, args: list[str]) -> list[str]:
    """The `tablao` arguments that the program named `program` (an executable's name) runs for `args`."""
    name = PureWindowsPath(program).name.lower().removesuffix(".exe")  # splits on "\\" and "/" alike
    if args and args[0] in (*SERVICE_COMMANDS, "desktop", "tray"):  # `tablao-tray tray` is the tray, not "tray tray"
        return args
    if args and args[0].lower().startswith("tablao://"):  # a desktop's URL handler: the app opens on the job
        return args
    if name == DESKTOP:
        return ["desktop", *args]
    if name == TRAY:
        return ["tray", *args]
    return args


def run() -> int:
    return main(program_argv(sys.executable, sys.argv[1:]))

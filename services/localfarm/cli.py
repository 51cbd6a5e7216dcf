"""`tablao all-in-one --headless`: a Server, a Manager and local workers on this machine, with no configuration.

The Server listens on --port, the Manager on --port + 1; the admin token is in <data-dir>/server/admin.token.
Without --headless, `tablao all-in-one` opens the desktop app, which runs this same command in the background
and shows the farm (embedded mode). Both modes parse their arguments here (`parse_args`: app/cli.py uses it before
choosing), so --help and errors show the all-in-one usage either way; this module imports no Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from services.localfarm.farm import FarmRunning, LocalFarm
from services.localfarm.layout import DATA_DIR_ENV, DEFAULT_SERVER_PORT, default_data_dir
from services.protocol import process_guard

if TYPE_CHECKING:
    from services.localfarm.demo_earlier import EarlierDemo

DEFAULT_WORKERS = 2


def build_parser() -> argparse.ArgumentParser:
    """`tablao all-in-one`'s one parser, with or without --headless: its --help and errors, whatever the mode.

    --port and --workers default to None: the headless farm then takes DEFAULT_SERVER_PORT and DEFAULT_WORKERS,
    the desktop app its saved settings."""
    parser = argparse.ArgumentParser(
        prog="tablao all-in-one",
        description="A Server, a Manager and local workers on this machine, with no configuration, shown in the "
        "desktop app (with --headless: no window).",
    )
    parser.add_argument("--headless", action="store_true", help="no desktop window (for servers)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: TABLAO_DATA_DIR or the user data dir")
    parser.add_argument(
        "--port", type=int, default=None,
        help=f"the Server's port; the Manager takes the next (default: {DEFAULT_SERVER_PORT}, or the app's setting)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None,
        help=f"local workers to start, 0 for none (default: {DEFAULT_WORKERS}, or the app's setting)",
    )  # fmt: skip
    parser.add_argument("--demo", action="store_true", help="render the sample scene once the farm is up")
    parser.add_argument(
        "--output-root", action="append", default=[], metavar="DIR",
        help="jobs may also write under this folder (repeatable; the render root is always one)",
    )  # fmt: skip
    # the desktop app: stop the farm when this process ends (unless it is told to leave the farm running)
    parser.add_argument("--owned-by", type=int, default=None, help=argparse.SUPPRESS)
    # the desktop app started this farm for itself: another app session may adopt it and stop it when it quits
    parser.add_argument("--for-app", action="store_true", help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The checked arguments of `tablao all-in-one`, in either mode (argparse's exit 2 with the usage if bad)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 0:
        parser.error("--workers must be 0 or more")
    if args.port is not None and not 1 <= args.port <= 65534:
        parser.error("--port must be within 1..65534 (the Manager takes the next port)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.headless:  # app/cli.py hands `tablao all-in-one` without --headless to the desktop app
        build_parser().error("without --headless the desktop app runs the farm: start it with `tablao all-in-one`")
    args.port = DEFAULT_SERVER_PORT if args.port is None else args.port
    args.workers = DEFAULT_WORKERS if args.workers is None else args.workers
    data_dir = (args.data_dir or default_data_dir()).resolve()
    if data_dir.exists() and not data_dir.is_dir():
        named = "--data-dir" if args.data_dir else f"the data directory ({DATA_DIR_ENV} or the default)"
        print(f"tablao all-in-one: {named}: {data_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, data_dir))
    except KeyboardInterrupt:  # Windows, where the loop has no signal handlers
        return 0


async def run(args: argparse.Namespace, data_dir: Path) -> int:
    # every service's data, logs and secrets in a 0700 folder, files 0600; this process holds the admin token
    process_guard.private_files()
    try:
        process_guard.private_dir(data_dir)
    except OSError as exc:  # not a folder on the way, not allowed, a read-only disk...
        print(f"tablao all-in-one: cannot use the data directory {data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    process_guard.harden()
    farm = LocalFarm(
        data_dir,
        args.port,
        args.workers,
        output_roots=tuple(args.output_root),
        say=lambda line: print(line, flush=True),
    )
    try:
        farm.claim(owner_pid=args.owned_by, for_app=args.for_app)
    except FarmRunning as exc:
        print(f"tablao all-in-one: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # a folder that exists but takes no files (read-only, not ours, a system folder)
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"tablao all-in-one: cannot use the data directory {data_dir}: {exc.strerror or exc}{where}; "
            "give another with --data-dir (or TABLAO_DATA_DIR)",
            file=sys.stderr,
        )
        return 1
    except RuntimeError as exc:
        print(f"tablao all-in-one: cannot start the farm: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if not await _start(farm, stop):
            return 0 if stop.is_set() else 1
        _banner(farm, data_dir)
        demo = asyncio.create_task(_demo(farm, data_dir)) if args.demo else None
        await farm.run(stop)
        if demo is not None:
            demo.cancel()
        print("Stopping the farm…", flush=True)
    finally:
        await farm.stop()
    print("Stopped.", flush=True)
    return 0


async def _start(farm: LocalFarm, stop: asyncio.Event) -> bool:
    """Start the farm; False if it could not start (said why) or a stop came first."""
    starting = asyncio.create_task(farm.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return False
    try:
        starting.result()
    except (RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
        print(f"tablao all-in-one: cannot start the farm: {exc}", file=sys.stderr)
        return False
    return True


def typed_tablao() -> str:
    """`tablao` as a person can type it: the bare name when it is on PATH and is this installation, else the path
    of this installation's entry point (`make run` does not put .venv/bin on PATH)."""
    entry: Path | None
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable is `tablao` itself
        entry = Path(sys.executable)
    else:
        scripts = Path(sys.executable).parent  # a venv's bin (Scripts on Windows) holds the entry point
        here = Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).stem == "tablao" else None
        entry = here or next((p for p in (scripts / "tablao", scripts / "tablao.exe") if p.is_file()), None)
        if entry is None:  # run from a source tree that was never installed
            return f"{shlex.quote(sys.executable)} -m app.cli"
    on_path = shutil.which("tablao")
    with contextlib.suppress(OSError):
        if on_path is not None and Path(on_path).resolve() == entry.resolve():
            return "tablao"
    return shlex.quote(str(entry.absolute()))


def _banner(farm: LocalFarm, data_dir: Path) -> None:
    print(
        f"Tablao farm running on this machine:\n"
        f"  Server   {farm.server_url}   (admin token in {farm.admin_token_file})\n"
        f"  Manager  {farm.manager_url}   (renders under {farm.render_root})\n"
        f"  Workers  {len(farm.workers)}\n"
        f"  Data     {data_dir}\n"
        f"Submit with: {typed_tablao()} submit JOB.json --server {farm.server_url} "
        f"--token-file {farm.admin_token_file}\n"
        f"Job types and their settings: {typed_tablao()} job-types [NAME]; the API: {farm.server_url}/api/v1/docs\n"
        f"Add a user with: {typed_tablao()} users add NAME --role artist --data-dir {shlex.quote(str(data_dir))}\n"
        f"  then `tokens create NAME` for their API token, `users password NAME` to log in from the desktop app "
        f"(the admin too: `users password admin`)\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )


async def _earlier_demo(farm: LocalFarm, where: Path) -> EarlierDemo:
    """The demo an earlier start submitted, with its job's state (canceled, failed, …) as the Server tells it."""
    from services.localfarm.demo_earlier import EarlierDemo, look_up
    from services.protocol.server_client import ServerClient

    try:
        token = farm.admin_token_file.read_text().strip()
    except OSError:
        return EarlierDemo(where)
    async with ServerClient(farm.server_url, token, timeout=10) as client:
        return await look_up(client, where)


async def _demo(farm: LocalFarm, data_dir: Path) -> None:
    """Submit the demo job and report its progress until it ends (Blender runs in a thread, not on the loop)."""
    from services.localfarm.demo_earlier import told
    from services.localfarm.demo_run import DemoRun, rendered_before

    if (earlier := rendered_before(data_dir / "demo")) is not None:
        print(told(await _earlier_demo(farm, earlier), typed_tablao()), flush=True)
        return
    demo = DemoRun(farm.server_url, farm.admin_token_file.read_text().strip(), data_dir / "demo")
    try:
        await asyncio.to_thread(demo.submit)
        for _ in itertools.count():
            if await asyncio.to_thread(demo.poll):
                break
            await asyncio.sleep(1)
    except (SystemExit, httpx.HTTPError) as exc:
        print(f"tablao all-in-one: the demo job: {exc}", flush=True)

"""`tablao worker`: parse the command line, build the agent's configuration and run it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
import sys
from dataclasses import replace
from pathlib import Path

# httpx imports its own command-line tool (click, rich, pygments: ~5 MB of an idle worker's memory) whenever
# those happen to be installed; a None entry makes that optional import fail quietly. Only effective when
# this module is imported before httpx, as with `python -m services.worker.cli`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from services.protocol import dir_lock, gc_tuning, process_guard, tls  # noqa: E402 - after the line above
from services.protocol.cli_args import BadValue, Parser, http_url, positive_float  # noqa: E402
from services.protocol.commands import TASK_TYPE_PATTERN  # noqa: E402
from services.protocol.named_files import SECRET_BYTES, UnreadableFile, read_named_text  # noqa: E402
from services.protocol.tags import worker_tags  # noqa: E402
from services.protocol.token_text import registration_secret_problem  # noqa: E402
from services.worker import capabilities, leftovers, render_limits  # noqa: E402
from services.worker.agent import EXIT_ERROR, EXIT_SUPERSEDED, Agent  # noqa: E402
from services.worker.agent_config import AgentConfig  # noqa: E402
from services.worker.buffer_check import BufferUnusable, check_buffer  # noqa: E402
from services.worker.runners import Programs  # noqa: E402
from services.worker.task_policy import TaskPolicy  # noqa: E402

EXIT_USAGE = 2
# EX_CONFIG, as a superseded worker: the update buffer is missing or damaged and only a person can decide (restore
# it, or --fresh-buffer); the systemd unit's RestartPreventExitStatus, the tray and the local farm do not restart
EXIT_BUFFER_UNUSABLE = EXIT_SUPERSEDED
# launchd restarts a job after any non-zero exit and cannot be told that one status means "stay down"; a worker
# plist asks for a clean exit when another process took this worker's identity (services/system/units.py)
SUPERSEDED_EXIT_ENV = "TABLAO_WORKER_SUPERSEDED_EXIT"
LOCK_NAME = "worker.lock"
SECRET_ENV = "TABLAO_WORKER_REGISTRATION_SECRET"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UsageError(Exception):
    pass


class _Parser(Parser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(self.explained(message))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tablao worker", description="Run a Tablao worker: it asks a Manager for tasks and runs them.")
    p.add_argument("--manager", required=True, metavar="URL", help="the Manager's URL, e.g. http://127.0.0.1:8471")
    p.add_argument("--data-dir", type=Path, metavar="D", help="where credentials and the update buffer live")
    p.add_argument("--name", help="the worker's name (default: this machine's host name)")
    p.add_argument("--tags", default="", metavar="a,b", help="tags this worker has (jobs may require tags)")
    p.add_argument("--task-types", metavar="t1,t2", help="offer only these task types")
    p.add_argument(
        "--host-attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an attribute for OpenJD host requirements, e.g. lic=nuke (attr.custom.lic); repeatable",
    )
    p.add_argument(
        "--host-amount",
        action="append",
        default=[],
        metavar="NAME=N",
        help="an amount for OpenJD host requirements, e.g. amount.worker.gpu=2; repeatable",
    )
    p.add_argument(
        "--registration-secret-file",
        type=Path,
        metavar="F",
        help=f"file holding the farm's registration secret (or set {SECRET_ENV})",
    )
    p.add_argument("--blender", metavar="PATH", help="the Blender program (or TABLAO_BLENDER; default: PATH)")
    p.add_argument("--ffmpeg", metavar="PATH", help="the ffmpeg program (or TABLAO_FFMPEG; default: PATH)")
    p.add_argument(
        "--render-threads", type=int, metavar="N", help="CPU threads render processes may use (default: all)"
    )
    p.add_argument(
        "--render-priority",
        choices=("normal", "low"),
        default="normal",
        help="OS priority of render processes: low is nice 10 / BELOW_NORMAL_PRIORITY_CLASS",
    )
    p.add_argument(
        "--credentials",
        choices=("file", "keyring"),
        default="file",
        help="keep this worker's credentials in worker.json (0600) or in the OS keyring",
    )
    p.add_argument(
        "--fresh-buffer",
        action="store_true",
        help="start with an empty update buffer when the old one is missing or damaged (it is kept aside)",
    )
    p.add_argument("--control", choices=("stdio",), help=argparse.SUPPRESS)  # the tray drives the worker
    trust = p.add_argument_group("what tasks may do (docs/security.md)")
    trust.add_argument(
        "--output-root",
        action="append",
        default=[],
        metavar="DIR",
        help="commands may write only under these folders (repeatable; path variables allowed, e.g. {render_root})",
    )
    trust.add_argument(
        "--env-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="also pass this inherited environment variable to tasks (repeatable; * allowed)",
    )
    trust.add_argument(
        "--protect",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="a file or folder tasks may never read or write (repeatable; the worker's data "
        "directory, Tablao's data folders and the secret file are always protected)",
    )
    trust.add_argument(
        "--allow-blender-autoexec",
        action="store_true",
        help="let Blender run Python scripts stored in blend files (off by default)",
    )
    trust.add_argument(
        "--no-confine",
        action="store_true",
        help="do not confine tasks with Landlock (they can then read this user's secrets)",
    )
    trust.add_argument("--run-as", metavar="USER", help="run task processes as this OS user (needs root)")
    p.add_argument(
        "--ca-bundle", metavar="PEM", help="CA certificates to verify an https Manager (or TABLAO_CA_BUNDLE)"
    )
    p.add_argument("--heartbeat-interval", type=positive_float, default=5.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--poll-wait", type=_poll_wait, default=10.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--may-i-run-interval", type=positive_float, default=2.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-prefetch", action="store_true", help="do not lease the next task while one runs (one task at a time)"
    )
    p.add_argument(
        "--no-warm-start",
        action="store_true",
        help="do not make the prefetched task's process while the task before runs (it is made when it starts)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def _poll_wait(text: str) -> float:
    """How long the Manager may hold a request for a task: 0 (answer at once) to 60 seconds."""
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"{text!r} is not a number") from None
    if not 0 <= value <= 60:  # also refuses nan
        raise BadValue(f"must be within 0..60, not {text!r}")
    return value


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _tags(text: str) -> list[str]:
    try:
        return worker_tags(text)
    except ValueError as exc:
        raise UsageError(f"--tags: {exc}") from None


def _check_run_as(user: str) -> None:
    if sys.platform == "win32":
        raise UsageError("--run-as: not available on Windows")
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        raise UsageError(f"--run-as: no user named {user!r}") from None
    if os.geteuid() != 0:
        raise UsageError("--run-as: the worker must run as root to start tasks as another user")


def make_config(args: argparse.Namespace) -> AgentConfig:
    try:
        url = http_url(str(args.manager))
    except BadValue as exc:
        raise UsageError(f"--manager: {exc}") from None
    name = args.name or socket.gethostname().split(".")[0] or "worker"
    if not _NAME.match(name):
        raise UsageError(f"--name: {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    secret = os.environ.get(SECRET_ENV, "").strip() or None
    # refused here, not by the Manager: its 422 would be retried every few seconds for ever
    if args.registration_secret_file is not None:
        try:
            secret = read_named_text(args.registration_secret_file, SECRET_BYTES, "a registration secret file").strip()
        except UnreadableFile as exc:
            raise UsageError(f"--registration-secret-file: {exc}") from None
        if not secret:
            raise UsageError(f"--registration-secret-file: {args.registration_secret_file} is empty")
        if problem := registration_secret_problem(secret):
            raise UsageError(
                f"--registration-secret-file: the secret in {args.registration_secret_file} is not usable: {problem}"
            )
    elif secret is not None and (problem := registration_secret_problem(secret)):
        raise UsageError(f"{SECRET_ENV} is not a usable registration secret: {problem}")
    programs = Programs.find(args.blender, args.ffmpeg)
    for flag, given, found in (
        ("--blender", args.blender, programs.blender),
        ("--ffmpeg", args.ffmpeg, programs.ffmpeg),
    ):
        if given and found is None:
            raise UsageError(f"{flag}: program {given!r} not found")
    if args.data_dir is not None:
        data_dir = args.data_dir
    else:
        from services.localfarm.layout import FarmLayout

        data_dir = FarmLayout.default().worker_dir(name)
    # --heartbeat-interval, --may-i-run-interval and --poll-wait are checked by their argparse types
    if args.render_threads is not None and not 1 <= args.render_threads <= 4096:
        raise UsageError("--render-threads must be within 1..4096")
    if url.startswith("https:") and (problem := tls.ca_bundle_problem(args.ca_bundle)):
        raise UsageError(problem)
    task_types = _csv(args.task_types) if args.task_types is not None else None
    if task_types is not None and not task_types:
        raise UsageError("--task-types: give at least one task type")
    for given in task_types or []:
        if re.fullmatch(TASK_TYPE_PATTERN, given) is None:
            raise UsageError(f"--task-types: {given!r} is no task type (a lower case letter, then up to 49 lower "
                             "case letters, digits and dashes, e.g. blender or exec-gpu)")  # fmt: skip
    if args.run_as is not None:
        _check_run_as(args.run_as)
    try:
        capabilities.gather(args.host_attribute, args.host_amount)
    except ValueError as exc:
        raise UsageError(f"--host-attribute/--host-amount: {exc}") from None
    protect = list(args.protect)
    if args.registration_secret_file is not None:
        protect.append(args.registration_secret_file)
    policy = TaskPolicy(
        env_allow=tuple(args.env_allow),
        output_roots=tuple(args.output_root),
        protect=tuple(protect),
        blender_autoexec=args.allow_blender_autoexec,
        confine=not args.no_confine,
        run_as=args.run_as,
    )
    return AgentConfig(
        ca_bundle=args.ca_bundle,
        task_policy=policy,
        manager_url=url,
        data_dir=data_dir,
        name=name,
        tags=_tags(args.tags),
        host_attributes=tuple(args.host_attribute),
        host_amounts=tuple(args.host_amount),
        task_types=task_types,
        registration_secret=secret,
        credentials_in_keyring=args.credentials == "keyring",
        programs=programs,
        heartbeat_interval=args.heartbeat_interval,
        may_i_run_interval=args.may_i_run_interval,
        poll_wait=args.poll_wait,
        prefetch=not args.no_prefetch,
        warm_start=not args.no_warm_start,
    )


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = make_config(args)
        superseded_exit = _superseded_exit_code()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        lock = _hold_data_dir(config.data_dir)
        # the registration secret was read; tasks must not find it in /proc/PID/environ or in our memory
        process_guard.forget_env([SECRET_ENV])
        process_guard.harden()
        # the buffer and credentials 0600; programs the worker starts get the previous mask back
        task_umask = process_guard.private_files()
    except UsageError as exc:
        print(f"tablao worker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"tablao worker: error: --data-dir: cannot create {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except dir_lock.InUse as exc:
        holder = f" (process {exc.pid})" if exc.pid is not None else ""
        print(
            f"tablao worker: error: another worker{holder} is running with the data directory {exc.path.parent}; "
            "each worker needs its own --data-dir",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        # after taking the lock: --fresh-buffer must not set aside the buffer of a worker that is running
        aside = check_buffer(config.data_dir, fresh=args.fresh_buffer)
    except BufferUnusable as exc:
        lock.release()
        print(f"tablao worker: cannot start: {exc}", file=sys.stderr)
        # EXIT_BUFFER_UNUSABLE, or the status a launchd plist asks for to stay down (see SUPERSEDED_EXIT_ENV)
        return superseded_exit
    if aside is not None:
        print(f"tablao worker: the old update buffer was kept as {aside}; starting with an empty one", file=sys.stderr)
    try:
        code = _logged_run(args, config, task_umask)
        return superseded_exit if code == EXIT_SUPERSEDED else code
    finally:
        lock.release()


def _superseded_exit_code() -> int:
    text = os.environ.get(SUPERSEDED_EXIT_ENV, "").strip()
    if not text:
        return EXIT_SUPERSEDED
    if not text.isdigit() or not 0 <= int(text) <= 255:
        raise UsageError(f"{SUPERSEDED_EXIT_ENV}: an exit status 0..255, not {text!r}")
    return int(text)


def _hold_data_dir(data_dir: Path) -> dir_lock.DirLock:
    """One worker per data directory: two would send one buffer's updates twice and share one identity."""
    lock = dir_lock.DirLock(data_dir / LOCK_NAME)
    lock.acquire()
    return lock


def _logged_run(args: argparse.Namespace, config: AgentConfig, task_umask: int) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s worker {config.name} %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request at INFO: thousands of lines an hour that say nothing
    logging.getLogger("httpx").setLevel(logging.WARNING)
    render_limits.configure(
        render_limits.RenderLimits(threads=args.render_threads, low_priority=args.render_priority == "low")
    )
    try:
        config.task_policy = replace(config.task_policy, umask=task_umask)
        # with the data directory's lock held, before any task: what an earlier run killed outright left running
        leftovers.end(config.data_dir, leftovers.task_uids(config.task_policy.run_as))
        gc_tuning.settle_long_lived()
        return asyncio.run(_run(config, control=args.control == "stdio"))
    except KeyboardInterrupt:  # Windows, where the loop has no signal handlers
        return 0
    except Exception as exc:  # a last line of defence: one readable line, not a traceback
        logging.getLogger("tablao.worker").exception("the worker crashed: %s", exc)
        return EXIT_ERROR


async def _run(config: AgentConfig, *, control: bool) -> int:
    agent = Agent(config)
    if control:
        from services.worker.control import ControlChannel

        ControlChannel(agent).start(asyncio.get_running_loop())
    return await agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

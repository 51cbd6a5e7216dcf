"""`tablao submit`, `tablao jobs`, `tablao job` and `tablao log`: the command-line client of a Server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from services import job_types_cli, openjd_submit, workers_cli
from services.localfarm import records
from services.localfarm.layout import DEFAULT_SERVER_PORT, FarmLayout
from services.protocol import API_PREFIX, EXIT_INTERRUPTED, resubmit
from services.protocol.cli_args import file_path, http_url, whole_in
from services.protocol.common import ID_MAX, JSON_MAX_DEPTH, json_depth, plural
from services.protocol.failures import LogPart
from services.protocol.jobs import IDEMPOTENCY_KEY_PATTERN, Job, JobAction, JobDetail
from services.protocol.named_files import MIB, SECRET_BYTES, UnreadableFile, read_named_text, shown_name
from services.protocol.server_client import AnswerTimeout, ApiError, BadAnswer, ServerClient
from services.protocol.server_memory import ServerMemory
from services.protocol.service_probe import Service, which_service
from services.protocol.states import JobStatus
from services.protocol.task_log_source import Place, TaskLogReader
from services.protocol.terminal_text import cut, escaped
from services.protocol.tls import is_loopback
from services.protocol.token_text import token_problem

DEFAULT_SERVER = f"http://127.0.0.1:{DEFAULT_SERVER_PORT}"
EXIT_PIPE = 141  # what a shell reports for a program its reader's end of the pipe stopped (128 + SIGPIPE)
# after a refused connection to the local farm's address (no --server given)
# the same words wherever it is said: `make run` from a source checkout, `tablao all-in-one` from a package
LOCAL_FARM_DOWN = (
    "is the local farm running? start it with `tablao all-in-one` (`make run` in a source checkout), or give --server"
)
# a request and its whole answer (seconds; env TABLAO_CLIENT_DEADLINE): a Server dripping bytes waits no longer.
# A submission uploads up to 8 MiB and the Server compiles its tasks, so it gets longer.
DEADLINE = 60.0
SUBMIT_DEADLINE = 300.0
JOB_FILE_BYTES = 64 * MIB  # past any Server's body limit but a generous one; a .blend given by mistake is refused
# no answer of a Server comes near (job lists are paged, ≤ 1000 jobs; a job's first tasks and last log entries)
MAX_ANSWER = 64 * 2**20
MAX_SHOWN = 500  # characters of a Server's message shown in an error line
LOG_LINE_SHOWN = 2_000  # characters of one log line in `tablao task` (`tablao log` prints lines whole)
MAX_URL_SHOWN = 100  # characters of one Server address named in an error line
MAX_URLS_SHOWN = 3  # addresses of --server named when none can be reached
# what OpenSSL says when the other end answers a TLS hello in plain HTTP
_PLAIN_HTTP_REASONS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}


def server_url(text: str) -> str:
    """`--server` (or TABLAO_SERVER): http(s) URLs with a host, comma-separated for several Servers; httpx's
    InvalidURL would otherwise be a traceback."""
    for part in [p.strip() for p in text.split(",") if p.strip()] or [text]:
        try:
            http_url(part)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a Server URL: {exc}; e.g. http://HOST:8470") from None
    return text


def connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        type=server_url,
        default=os.environ.get("TABLAO_SERVER"),
        help=f"the Server's URL (env TABLAO_SERVER; default: the local all-in-one farm's, else {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--token-file",
        type=file_path,
        default=None,
        help="file holding an API token (env TABLAO_TOKEN holds one directly; default: the local farm's admin.token)",
    )
    parser.add_argument("--ca-bundle", help="CA certificates to verify an https Server (env TABLAO_CA_BUNDLE)")


_token_from = ""  # where read_token found the token: a refusal names it (a stale TABLAO_TOKEN went unnamed)


def read_token(args: argparse.Namespace) -> str:
    """The API token: TABLAO_TOKEN, --token-file, else the local farm's admin.token; SystemExit saying why not
    (never quoting the token: it is checked here, before httpx would put it in an error of its own)."""
    global _token_from
    if args.token_file is None and (env := os.environ.get("TABLAO_TOKEN", "").strip()):
        if problem := token_problem(env):
            raise SystemExit(f"TABLAO_TOKEN is not a usable API token: {problem}")
        _token_from = "TABLAO_TOKEN"
        return env
    path = args.token_file or FarmLayout.default().admin_token_file
    _token_from = str(path)
    hint = ""
    if args.token_file is None:  # the local farm's admin token was looked for
        server = getattr(args, "server", None)
        hint = (
            f"; give {_address(server)}'s token with --token-file or TABLAO_TOKEN"
            if server
            else f"; {LOCAL_FARM_DOWN} and --token-file"
        )
    try:
        token = read_named_text(path, SECRET_BYTES, "an API token file").strip()
    except UnreadableFile as exc:
        raise SystemExit(f"cannot read the API token from {path}: {exc.reason}{hint}") from None
    if not token:
        raise SystemExit(f"the API token file {path} is empty{hint}")
    if problem := token_problem(token):
        raise SystemExit(f"the API token file {path} is not usable: {problem}")
    return token


def connection(args: argparse.Namespace) -> tuple[str, str]:
    """The Server's URL and the API token to use. Without --server, the local farm's when one runs, where its
    supervisor recorded it (`tablao all-in-one --port` may have moved it), whoever's token is given (a user's
    token made with `tablao tokens create` is for that farm too); else DEFAULT_SERVER."""
    if args.server and args.token_file is None and not os.environ.get("TABLAO_TOKEN", "").strip():
        host = urlsplit(args.server).hostname or ""
        if not is_loopback(host):
            # the local farm's admin token is for a Server on this machine: a mistyped or another farm's address
            # would have been sent it
            raise SystemExit(
                f"--server {args.server} is another machine's: give a token of that Server with --token-file or "
                "TABLAO_TOKEN (the local farm's admin token is sent only to a Server on this machine)"
            )
    token = read_token(args)
    if args.server:
        return args.server, token
    farm = records.running(FarmLayout.default().farm_dir)
    if farm is not None and farm.server_url:
        return farm.server_url, token
    return DEFAULT_SERVER, token


def deadline(command: str) -> float:
    """Seconds a request and its answer may take: TABLAO_CLIENT_DEADLINE, else the command's default."""
    text = os.environ.get("TABLAO_CLIENT_DEADLINE", "")
    try:
        value = float(text) if text else math.nan
    except ValueError:
        raise SystemExit(f"TABLAO_CLIENT_DEADLINE={text!r} is not a number of seconds") from None
    if math.isnan(value):
        return SUBMIT_DEADLINE if command == "submit" else DEADLINE
    if not 0 < value < math.inf:
        raise SystemExit(f"TABLAO_CLIENT_DEADLINE={text!r} is not a positive number of seconds")
    return value


def cli_client(command: str, server: str, token: str, ca_bundle: str | None) -> ServerClient:
    """A ServerClient with the command-line client's deadline and answer size cap; with several Servers, starting
    at the one that answered the last command (server_memory.py): each command would pay again for passing over
    one that hangs."""
    return ServerClient(
        server, token, ca_bundle=ca_bundle, deadline=deadline(command), max_answer=MAX_ANSWER, memory=ServerMemory()
    )


def shown(text: object, limit: int | None = None) -> str:
    """Text from the Server (or another user: a job's name) as one line a terminal shows as it is: control
    characters, line breaks and other unprintables escaped as repr does (\x1b, \n, \u202e)."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return escaped(text)


def _progress(job: Job) -> str:
    return f"{job.tasks_completed}/{job.tasks_total}"


JOBS_SHOWN_MAX = 1000  # the Server's largest page of jobs


def print_jobs(jobs: list[Job]) -> None:
    if not jobs:
        print("no jobs")
        return
    print(f"{'ID':>6}  {'STATUS':<18} {'PRIO':>4}  {'DONE':>11}  {'TYPE':<15} {'SUBMITTER':<12} NAME")
    for j in jobs:
        print(
            f"{j.id:>6}  {j.status:<18} {j.priority:>4}  {_progress(j):>11}  {shown(j.type):<15} "
            f"{shown(j.submitter):<12} {shown(j.name)}"
        )


def print_job(job: JobDetail) -> None:
    print(f"Job {job.id}: {shown(job.name)}")
    print(
        f"  type {shown(job.type)}, status {job.status}, priority {job.priority}, submitted by {shown(job.submitter)}"
    )
    # tasks_active: handed out and not ended (assigned, active or soft-failed); tasks_running: started on a worker
    print(
        f"  tasks: {job.tasks_completed} completed, {job.tasks_active} in progress ({job.tasks_running} running), "
        f"{job.tasks_failed} failed, {job.tasks_canceled} canceled, {job.tasks_total} in all"
    )
    if job.activity:
        print(f"  activity: {shown(job.activity)}")
    if job.tags:  # what a worker must have to run it
        print(f"  needs tags: {shown(', '.join(job.tags))}")
    if job.depends_on:
        print(f"  waits for jobs: {', '.join(str(d) for d in job.depends_on)}")
    if job.manager_id is not None:
        print(f"  only on Manager {job.manager_id}")
    for key, value in job.settings.items():  # where its frames or video go ({render_root}: the Manager's)
        if key.startswith("output") and isinstance(value, str):
            print(f"  {shown(key)}: {shown(value)}")
    print("  tasks:")
    for t in job.tasks:
        extra = f"  ({shown(t.activity)})" if t.activity else ""
        worker = f" on {shown(t.worker_name)}" if t.worker_name else ""
        print(f"    {t.id:>8}  {t.status:<12} {shown(t.name)}{worker}{extra}")
    if job.tasks_next_cursor:
        left = job.tasks_total - len(job.tasks)
        print(f"    … {left:,} more (`tablao task ID` shows one; the desktop app lists them all)")
    print("  log:")
    for entry in job.log[-20:]:
        print(f"    {entry.time:%Y-%m-%d %H:%M:%S}  {shown(entry.user)}: {shown(entry.message)}")


async def _submit(client: ServerClient, args: argparse.Namespace) -> int:
    try:
        text = read_named_text(
            args.file, JOB_FILE_BYTES, "a JSON job or an Open Job Description template", dash_is_stdin=True
        )
    except UnreadableFile as exc:
        raise SystemExit(str(exc)) from None
    where = shown_name(args.file)
    if openjd_submit.is_template(args.file, text):
        body = openjd_submit.submission(args.file, text, args.param, await client.farm_variables(), args.priority)
    else:
        if args.param:
            raise SystemExit("-p sets an Open Job Description template's parameters; this file is a JSON job")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{where} is not valid JSON: {exc}") from exc
        except RecursionError:  # json's parser recurses into each nested array or object
            raise SystemExit(f"{where} is nested too deeply to be a JSON job") from None
        # the Server takes settings nested JSON_MAX_DEPTH deep; far deeper, _finite and the request's own JSON
        # writer would recurse past Python's limit (a traceback)
        if any(json_depth(v) > JSON_MAX_DEPTH for v in (body.values() if isinstance(body, dict) else [body])):
            raise SystemExit(f"{where}: the job is nested more than {JSON_MAX_DEPTH} levels deep in its settings")
        if args.priority is not None:  # the command line's over the file's
            if not isinstance(body, dict):
                raise SystemExit(f"{where} is not a JSON job: a job is an object {{name, type, settings, ...}}")
            body["priority"] = args.priority
    if not _finite(body):  # NaN or 1e999: JSON cannot carry it, and httpx would stop with a traceback
        raise SystemExit(f"{where}: a number in the job is NaN or infinite; give a finite number")
    key = args.idempotency_key or resubmit.new_key()
    again = f"run the command again with --idempotency-key {key} to get it rather than a second one"
    try:
        made = await client.submit(body, key)
    except (httpx.TransportError, ApiError) as exc:
        if resubmit.maybe_made(exc):  # a second run must not make a second job
            exc.add_note(f"the job may have been made: {again}")
        raise
    except asyncio.CancelledError:  # Ctrl-C: the request may have reached the Server (a big job: it goes on)
        print(f"tablao submit: interrupted; the job may have been made: {again}", file=sys.stderr)
        raise
    job = made.job
    if made.made_before:
        print(f"job {job.id} ({shown(job.name)}) was submitted already with this key: {job.status}")
    else:
        print(f"submitted job {job.id} ({shown(job.name)}): {plural(job.tasks_total, 'task')}, {job.status}")
    return 0


def _finite(value: object) -> bool:
    """Whether every number in a JSON-like value is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


async def _jobs(client: ServerClient, args: argparse.Namespace) -> int:
    page = await client.list_jobs(status=args.status or (), search=args.search, limit=args.limit)
    print_jobs(page.items)
    if page.next_cursor:  # on stderr: the table on stdout stays the jobs alone, for a script
        more = f"--limit up to {JOBS_SHOWN_MAX} or " if args.limit < JOBS_SHOWN_MAX else ""
        print(f"(the newest {len(page.items)} shown; more jobs match: {more}--status / --search to narrow)",
              file=sys.stderr)  # fmt: skip
    return 0


async def _job(client: ServerClient, args: argparse.Namespace) -> int:
    if args.action:
        await client.job_action(args.id, JobAction(args.action))
    print_job(await client.get_job(args.id))
    return 0


async def _task(client: ServerClient, args: argparse.Namespace) -> int:
    if args.action:
        await client.task_action(args.id, args.action, args.reason)
    t = await client.get_task(args.id)
    print(f"Task {t.id}: {shown(t.name)} of job {t.job_id} ({shown(t.type)})")
    worker = f" on {shown(t.worker_name)}" if t.worker_name else ""
    # not the attempt: that counts the Server's hand-outs to Managers (a Manager retries a failed task on its
    # own workers within one), and "attempt 1, 3 failures" read as a contradiction
    print(f"  status {t.status}{worker}, {plural(t.failure_count, 'failure')}")
    if t.activity:
        print(f"  activity: {shown(t.activity)}")
    any_cut = False
    for line in t.log_tail[-10:]:
        # a line break in one is escaped: nothing looks like this command's own; a long one (a progress bar's
        # 10 MB of carriage returns) is cut, so the task's view stays on screen
        head, more = cut(line.rstrip(), LOG_LINE_SHOWN)
        print(f"    {shown(head)}" + (f"… {more:,} more {'character' if more == 1 else 'characters'}" if more else ""))
        any_cut = any_cut or more > 0
    whole = ", lines whole" if any_cut else ""
    print(f"  its full log{whole}: tablao log {t.id}" + (" (--all from its first line)" if any_cut else ""))
    return 0


async def _log(client: ServerClient, args: argparse.Namespace) -> int:
    """A task's full log, as the desktop app finds it (the Manager that ran it, else the Server's copy, else its
    last lines): the end, or all of it; with --follow, new lines while the task runs. Where it comes from goes to
    stderr; control characters a task printed are escaped, as a job's name is."""
    reader = TaskLogReader(client, client.token or "", args.id)
    try:
        # the Manager is read with no read timeout (a followed log may be quiet): each part has the deadline
        within = client.deadline
        async with asyncio.timeout(within):
            end = part = await reader.open()
        print(f"# {shown(reader.note, MAX_SHOWN)}", file=sys.stderr)
        if args.all and part.earlier:
            # from its start, a part at a time, each printed as it comes: a log of gigabytes in the memory of one
            # part (the end read first only found the log)
            end = LogPart(text="", first=0, last=0, earlier=False)
            while True:
                async with asyncio.timeout(within):
                    part = await reader.later(end.last)
                if not part.text:
                    break
                sys.stdout.write(log_text(part.text))
                if part.last <= end.last:  # a source whose cursor does not move on: not read again for ever
                    break
                end = part
        else:
            if part.earlier:
                print("# earlier lines not shown (--all prints them)", file=sys.stderr)
            sys.stdout.write(log_text(part.text))
        if args.follow and reader.place != Place.MANAGER:
            print("# not followed: only the Manager that ran the task has its new lines", file=sys.stderr)
        elif args.follow:
            sys.stdout.flush()
            async for chunk in reader.follow(end.last):
                sys.stdout.write(log_text(chunk))
                sys.stdout.flush()
    except httpx.HTTPError as exc:
        source = reader.source
        if reader.place != Place.MANAGER or source is None:
            raise
        # the Server answered; what failed is the Manager, which the usual "cannot reach the Server" would not say
        why = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else str(exc) or "failed"
        raise SystemExit(
            f"reading the log from manager {shown(source.manager_name, 100)} at {shown(source.manager_url, 200)}: "
            f"{shown(why, MAX_SHOWN)}"
        ) from None
    finally:
        await reader.aclose()
    return 0


def log_text(text: str) -> str:
    """A task's output for a terminal: line breaks and tabs kept, other control characters escaped (a task
    could otherwise move the cursor, retitle the window or hide lines from whoever reads its log)."""
    return escaped(text, keep="\n\t")


COMMANDS: dict[str, Callable[[ServerClient, argparse.Namespace], Awaitable[int]]] = {
    "submit": _submit,
    "jobs": _jobs,
    "job": _job,
    "log": _log,
    "workers": workers_cli.run,
    "task": _task,
    "job-types": job_types_cli.run,
}


def idempotency_key(text: str) -> str:
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not 1-128 printable ASCII characters without spaces")
    return text


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tablao {command}")
    connection_args(parser)
    if command == "submit":
        parser.add_argument(
            "file", type=file_path,
            help="a JSON job {name, type, settings, priority, ...}, or an Open Job Description job template "
            "(YAML or JSON; docs/openjd.md); - reads it from standard input",
        )  # fmt: skip
        parser.add_argument(
            "-p", "--param", action="append", default=[], metavar="NAME=VALUE",
            help="a template parameter's value (repeatable)",
        )  # fmt: skip
        parser.add_argument(
            "--priority", type=whole_in(0, 100), default=None, help="the job's priority (0-100), over a JSON job's own"
        )
        parser.add_argument(
            "--idempotency-key", metavar="KEY", type=idempotency_key,
            help="1-128 printable ASCII characters, no spaces (e.g. shot-010/lighting/v3): running the command "
            "again with the same key and file gives the job the first run made, not a second one",
        )  # fmt: skip
    elif command == "jobs":
        parser.add_argument(
            "--status", action="append", choices=[s.value for s in JobStatus], metavar="STATUS",
            help=f"only jobs with this status (repeatable): {', '.join(s.value for s in JobStatus)}",
        )  # fmt: skip
        parser.add_argument("--search", help="only jobs whose name contains this")
        parser.add_argument("--limit", type=whole_in(1, JOBS_SHOWN_MAX), default=50,
                            help=f"at most this many jobs, newest first (1-{JOBS_SHOWN_MAX}; default 50)")  # fmt: skip
    elif command == "job":
        parser.add_argument("id", type=whole_in(1, ID_MAX), help="the job's id (`tablao jobs` lists them)")
        parser.add_argument("--action", choices=[a.value for a in JobAction], help="change the job first")
    elif command == "workers":
        workers_cli.add_arguments(parser)
    elif command == "job-types":
        parser.add_argument("name", nargs="?", help="a job type: its settings and a job of it to start from")
    elif command == "task":
        parser.add_argument("id", type=whole_in(1, ID_MAX), help="the task's id (`tablao job ID` lists its tasks)")
        parser.add_argument("--action", choices=["requeue", "cancel"], help="requeue or cancel the task first")
        parser.add_argument("--reason", default="", help="why, for the job's log")
    elif command == "log":
        parser.add_argument("id", type=whole_in(1, ID_MAX), help="the task's id (`tablao job ID` lists its tasks)")
        parser.add_argument("--all", action="store_true", help="the whole log, not only its end")
        parser.add_argument("--follow", "-f", action="store_true", help="then new lines while the task runs")
    return parser


def main(command: str, argv: list[str]) -> int:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if problem := _usage_problem(command, args):
        parser.error(problem)  # exit 2, as argparse's own, before any request (it was exit 1 after one)

    async def run() -> int:
        server, token = connection(args)
        async with cli_client(command, server, token, args.ca_bundle) as client:
            try:
                return await COMMANDS[command](client, args)
            except ApiError as exc:
                if exc.status_code == 404:
                    await _check_is_a_server(client.base_url, exc.detail, args.ca_bundle)
                raise

    return run_reporting_errors(command, run, given=args.server, local=not args.server)


def _usage_problem(command: str, args: argparse.Namespace) -> str | None:
    if command == "workers":
        return workers_cli.usage_problem(args)
    if command == "task" and args.reason and not args.action:
        return "--reason goes with --action requeue or cancel (it is written in the job's log)"
    return None


async def _check_is_a_server(url: str, detail: str, ca_bundle: str | None) -> None:
    """After a 404: SystemExit when url is not a Server's, naming the Manager when it is one's. A Server's own
    404 (no such job) is left as it is."""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith(("/api/v1", "/api")):  # the routes' own path went after it again
        given = _address(url)
        base = given.removesuffix("/v1").removesuffix("/api")
        raise SystemExit(f"{given} is not a Tablao Server's address but its API's: give --server {base}")
    service = await which_service(url, ca_bundle=ca_bundle)
    if service is Service.SERVER or (service is None and detail != "Not Found"):
        return  # a Server's, or an answer that names what was not found: the Server's own words say more
    what = "it is a Tablao Manager" if service is Service.MANAGER else f"it answered 404 {shown(detail, MAX_SHOWN)}"
    raise SystemExit(
        f"{url} is not a Tablao Server ({what}): give the Server's address with --server "
        f"(a Server listens on port {DEFAULT_SERVER_PORT} unless told otherwise)"
    )


def _refusal(exc: ApiError) -> str:
    """The Server's refusal in a line: the field it names (a job's `settings.output_path`), and for a token it
    refuses, how to get one."""
    detail = shown(exc.detail, MAX_SHOWN)
    fields = [e.field for e in exc.errors if e.field]
    if exc.status_code == 422 and len(fields) == 1 and not exc.detail.startswith(fields[0]):
        detail = f"{shown(fields[0], 200)}: {detail}"
    if exc.status_code == 401:
        source = f" (this one is from {shown(_token_from, 300)})" if _token_from else ""
        detail += (
            f"{source}; an admin makes a token with `tablao tokens create USER` on the Server's machine, given here "
            "with --token-file or TABLAO_TOKEN"
        )
    return detail


def run_reporting_errors(
    command: str, run: Callable[[], Awaitable[int]], *, given: str | None = None, local: bool = False
) -> int:
    """Run the command, each error one line on stderr. `given`: the --server text, whose addresses an error
    reaching one names; `local`: the address is the local farm's (no --server), so a refusal says how to start it."""
    try:
        code: int = asyncio.run(run())  # type: ignore[arg-type]
        sys.stdout.flush()  # here, not at exit: a reader gone away (`| head`) is handled below
        return code
    except BrokenPipeError:
        return reader_gone()
    except KeyboardInterrupt:  # Ctrl-C (the way to stop `log -f`): what the command had to say, it said
        return EXIT_INTERRUPTED
    except BadAnswer as exc:
        said = shown(exc.detail, MAX_SHOWN) + _notes(exc)
    except ApiError as exc:
        said = f"{_refusal(exc)} (HTTP {exc.status_code}){_notes(exc)}"
    except AnswerTimeout as exc:
        said = f"{exc} (TABLAO_CLIENT_DEADLINE sets the seconds){_notes(exc)}"
    except httpx.HTTPError as exc:
        said = _unreachable(exc, given, local) + _notes(exc)
    except httpx.InvalidURL as exc:  # not an HTTPError; server_url checks --server, this catches the rest
        said = f"bad Server URL (--server or TABLAO_SERVER): {exc}"
    except SystemExit as exc:
        said = shown(exc)
    except OSError as exc:  # a CA bundle that is not there
        said = str(exc)
    print(f"tablao {command}: {said}", file=sys.stderr)
    return 1


def _notes(exc: BaseException) -> str:
    """What the command added to an error (`submit`: the key that gets a job whose answer was lost)."""
    return "".join(f"; {note}" for note in getattr(exc, "__notes__", ()))


def reader_gone() -> int:
    """stdout's reader went away (`tablao jobs | head`): say nothing more, as a program stopped by SIGPIPE."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit finds somewhere to write
        os.close(devnull)
    return EXIT_PIPE


def _unreachable(exc: httpx.HTTPError, given: str | None, local: bool) -> str:
    """'cannot reach the Server: connection refused (tried http://h:8470)': the address (every one given, when
    none could be connected to: the client tries the next at once), a TLS hint, and how to start the local farm
    when its address refused."""
    if _refused(exc):
        reason = "connection refused"
    elif str(exc):
        reason = shown(exc, MAX_SHOWN)
    elif isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError)):
        # httpx's text is empty when the peer closed without a word of HTTP (another protocol's port)
        reason = "the connection was closed without an HTTP answer: is that a Tablao Server's address?"
    else:
        reason = type(exc).__name__
    urls = [u.strip() for u in (given or "").split(",") if u.strip()]
    tried = _request_url(exc)
    if tried is not None:
        tried = next((u for u in urls if _same_origin(u, tried)), tried)
    elif len(urls) == 1:
        tried = urls[0]
    if len(urls) > 1 and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        where = f" (tried {_addresses(urls)})"
    else:
        where = f" (tried {_address(tried)})" if tried is not None else ""
    hint = f"; {LOCAL_FARM_DOWN}" if local and isinstance(exc, httpx.ConnectError) else ""
    if isinstance(exc, httpx.ReadTimeout):  # it was reached: it took the connection and said nothing
        waited = _read_timeout(exc)
        within = f" within {waited:g} s" if waited is not None else ""
        return (f"the Server did not answer{within}{where}: it took the connection but sent nothing (a Server "
                "stopped or overloaded, or another program on that port)")  # fmt: skip
    return f"cannot reach the Server: {reason}{where}{_tls_hint(exc)}{hint}"


def _read_timeout(exc: httpx.HTTPError) -> float | None:
    """The seconds the request waited for an answer, as its timeout set them."""
    if not _has_request(exc):
        return None
    timeout = exc.request.extensions.get("timeout", {}).get("read")
    return float(timeout) if isinstance(timeout, (int, float)) else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it came from: httpx's error, httpcore's, anyio's, the socket's or the ssl module's."""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return
        yield cause
        cause = cause.__cause__ or cause.__context__


def _refused(exc: httpx.HTTPError) -> bool:
    return any(isinstance(cause, ConnectionRefusedError) for cause in _causes(exc))


def _request_url(exc: httpx.HTTPError) -> str | None:
    """The Server address the failed request went to: its URL up to the API's path."""
    return str(exc.request.url).partition(API_PREFIX + "/")[0] if _has_request(exc) else None


def _same_origin(a: str, b: str) -> bool:
    try:
        x, y = httpx.URL(a), httpx.URL(b)
    except httpx.InvalidURL:
        return False
    return (x.scheme, x.host, x.port) == (y.scheme, y.host, y.port)


def _address(url: str) -> str:
    """A Server address to show: scheme, host, port and path, never a user, password or query (a token)."""
    try:
        parsed = httpx.URL(url)
        text = f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}{parsed.path}".rstrip("/")
    except (httpx.InvalidURL, ValueError):
        text = url.split("@")[-1].split("?")[0]
    return shown(text, MAX_URL_SHOWN)


def _addresses(urls: list[str]) -> str:
    named = ", ".join(_address(u) for u in urls[:MAX_URLS_SHOWN])
    return named + (f" and {len(urls) - MAX_URLS_SHOWN} more" if len(urls) > MAX_URLS_SHOWN else "")


def _tls_hint(exc: httpx.HTTPError) -> str:
    """A hint when an https connection met a plain-HTTP answer instead of a TLS handshake, when plain http met a
    Server that closed at once (one serving https does), or when the Server's certificate is not of a known CA."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "; give the CA that signed the Server's certificate with --ca-bundle or TABLAO_CA_BUNDLE"
        if isinstance(cause, ssl.SSLError) and cause.reason in _PLAIN_HTTP_REASONS:
            plain = f"http://{exc.request.url.netloc.decode()}" if _has_request(exc) else "http://"
            return f"; this Server may not use TLS (try {plain})"
    closed = isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError))
    if closed and _has_request(exc) and exc.request.url.scheme == "http":
        return f"; if this Server uses TLS, try https://{exc.request.url.netloc.decode()}"
    return ""


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True

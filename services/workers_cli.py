"""`tablao workers [WORKER] [--action sleep|wake|shutdown|restart|forget] [--now]`: the farm's workers, one worker's
details, and a wrangler's requests of it from the command line (a headless farm's wrangler needed the API and
curl to put a worker to sleep or forget one that is gone).

A worker is named by its name, its id, or the start of its id (at least ID_PREFIX_MIN characters, as the list
shows them), as long as that names one worker only.
"""

from __future__ import annotations

import argparse

from services.protocol.common import plural
from services.protocol.farm import Worker
from services.protocol.server_client import ServerClient
from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.protocol.terminal_text import escaped

ID_SHOWN = 8  # characters of a worker's id in the list: enough to tell thousands apart
ID_PREFIX_MIN = 4
ACTIONS = {
    "sleep": WorkerStatusRequest.ASLEEP,
    "wake": WorkerStatusRequest.AWAKE,
    "shutdown": WorkerStatusRequest.SHUTDOWN,
    "restart": WorkerStatusRequest.RESTART,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "worker", nargs="?", help="a worker's name, id, or the start of its id: its details (and --action)"
    )
    parser.add_argument(
        "--action", choices=[*ACTIONS, "forget"],
        help="ask the worker to sleep, wake, shut down or restart (after its current task unless --now), or "
        "forget a worker that is gone (offline)",
    )  # fmt: skip
    parser.add_argument("--now", action="store_true", help="with --action: at once, its running task requeued")


def _shown(text: object) -> str:
    return escaped(str(text))


def find(workers: list[Worker], given: str) -> Worker:
    """The one worker `given` names; SystemExit saying why not."""
    if by_id := [w for w in workers if w.id == given]:
        return by_id[0]
    by_name = [w for w in workers if w.name == given]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        ids = ", ".join(_shown(w.id) for w in by_name)
        raise SystemExit(f"{len(by_name)} workers are named {_shown(given)}: give its id ({ids})")
    by_prefix = [w for w in workers if len(given) >= ID_PREFIX_MIN and w.id.startswith(given)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if by_prefix:
        raise SystemExit(f"{len(by_prefix)} workers have an id starting with {_shown(given)}: give more of it")
    raise SystemExit(f"no worker is named {_shown(given)} or has it as its id; `tablao workers` lists them")


# the longest status with one asked for: `starting→shutdown`
STATUS_WIDTH = max(len(f"{s}→{r}") for s in WorkerStatus for r in WorkerStatusRequest)


def print_list(workers: list[Worker]) -> None:
    print(f"{'worker':<24} {'id':<{ID_SHOWN}} {'status':<{STATUS_WIDTH}} {'platform':<8} {'task':>10}  why / tags")
    for w in workers:
        task = w.current_task_id if w.current_task_id is not None else "-"
        why = f"{w.unavailable}; " if w.unavailable else ""
        # a status asked for and not reached yet, in the column's width: "(asked: asleep)" pushed the rest aside
        asked = f"→{w.status_requested}" if w.status_requested else ""
        tags = _shown(" ".join(w.tags))
        print(
            f"{_shown(w.name)[:24]:<24} {_shown(w.id[:ID_SHOWN]):<{ID_SHOWN}} {w.status + asked:<{STATUS_WIDTH}} "
            f"{_shown(w.platform):<8} {task:>10}  {why}{tags}"
        )
    print(plural(len(workers), "worker"))


def print_worker(w: Worker) -> None:
    asked = f" (asked: {w.status_requested})" if w.status_requested else ""
    print(f"Worker {_shown(w.name)}  ({_shown(w.id)}, Manager {w.manager_id})")
    print(f"  status {w.status}{asked}" + (f"; not taking work: {w.unavailable}" if w.unavailable else ""))
    if w.current_task_id is not None:
        after = f", then task {w.next_task_id}" if w.next_task_id is not None else ""
        print(f"  running task {w.current_task_id}{after}")
    seen = f"{w.last_seen:%Y-%m-%d %H:%M:%S} UTC" if w.last_seen else "never"
    print(f"  platform {_shown(w.platform)}, last seen {seen}")
    print(f"  task types: {_shown(', '.join(w.task_types)) or '-'}")
    print(f"  tags: {_shown(', '.join(w.tags)) or '-'}")
    for name, version in sorted(w.software.items()):
        print(f"  {_shown(name)}: {_shown(version)}")


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong in the arguments themselves, said before any request (a usage error, exit 2)."""
    if args.worker is None and (args.action or args.now):
        return "--action and --now need a worker: `tablao workers NAME --action sleep`"
    if args.now and args.action in (None, "forget"):
        return "--now goes with --action sleep, wake, shutdown or restart"
    return None


async def run(client: ServerClient, args: argparse.Namespace) -> int:
    if args.worker is None:
        print_list(await client.list_workers())
        return 0
    worker = find(await client.list_workers(), args.worker)
    if args.action == "forget":
        await client.forget_worker(worker.id)
        print(f"worker {_shown(worker.name)} ({_shown(worker.id)}) forgotten: if it comes back, it registers again")
        return 0
    if args.action is not None:
        worker = await client.request_worker_status(worker.id, ACTIONS[args.action], lazy=not args.now)
    print_worker(worker)
    return 0

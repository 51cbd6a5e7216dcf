"""`tablao manager`: runs a Manager against a Server (also `python -m services.manager.cli`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn
from uvicorn.config import LOG_LEVELS

from services.localfarm.layout import FarmLayout
from services.localfarm.ports import busy_message
from services.manager.app import create_app, registration_secret
from services.manager.config import DEFAULT_PORT, ManagerConfig
from services.manager.store.check import StoreUnusable, check_owner, check_store
from services.protocol import cli_args, dir_lock, gc_tuning, process_guard, tls
from services.protocol.cli_args import non_negative_int, port, positive_float, positive_int
from services.protocol.link_probe import start_problem
from services.protocol.manager_client import server_urls
from services.protocol.named_files import SECRET_BYTES, UnreadableFile, read_named_text
from services.protocol.serving import quick_server
from services.protocol.token_text import token_problem

LOCK_NAME = "manager.lock"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = cli_args.Parser(prog="tablao manager", description="Run a Tablao Manager.")
    p.add_argument(
        "--server", required=True,
        help="the Server's URL, e.g. http://127.0.0.1:8470; several Servers of one farm separated by commas "
        "(the Manager moves to the next when one stops answering)",
    )  # fmt: skip
    p.add_argument("--token-file", required=True, type=Path, help="file holding this Manager's token")
    p.add_argument("--data-dir", type=Path, default=None, help=f"default: {FarmLayout.default().manager_dir}")
    p.add_argument(
        "--host", type=cli_args.listen_host, default="127.0.0.1",
        help="address to listen on (0.0.0.0 or :: for the network; an IPv6 address with or without brackets)",
    )  # fmt: skip
    p.add_argument("--port", type=port, default=DEFAULT_PORT, help="0 picks a free port")
    p.add_argument("--name", default=None)
    p.add_argument(
        "--worker-timeout", type=positive_float, default=None, metavar="S",
        help="seconds without heartbeat before a worker is offline (> 0; default: 60 or TABLAO_WORKER_TIMEOUT)",
    )  # fmt: skip
    p.add_argument(
        "--blocklist-threshold", type=positive_int, default=None, metavar="N",
        help="failures of one job's tasks on one worker before it may not run that job (>= 1; default: 3)",
    )  # fmt: skip
    p.add_argument(
        "--prefetch-margin", type=non_negative_int, default=None, metavar="N",
        help="tasks claimed beyond the idle workers' (>= 0, 0: none; default: from the workers and their pace)",
    )  # fmt: skip
    p.add_argument(
        "--variables", type=cli_args.path_variables, default=None, metavar="FILE",
        help='JSON file of path variables: {"render_root": {"linux": "/r", "windows": "R:\\\\"}}',
    )  # fmt: skip
    p.add_argument("--port-file", type=Path, default=None, help="write the port listened on here")
    p.add_argument(
        "--public-url", type=cli_args.http_url, default=None,
        help="where the Server's users reach this Manager for full task logs (default: the address listened on)",
    )  # fmt: skip
    p.add_argument(
        "--fresh-store", action="store_true",
        help="start with an empty store when the old one is missing or damaged (it is kept aside)",
    )  # fmt: skip
    p.add_argument("--log-level", type=str.lower, choices=list(LOG_LEVELS), default="info")
    tls.tls_args(p, client=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if logging.getLogger().level > logging.DEBUG:
        # httpx logs every request at INFO: dozens of lines a second about claims and update batches
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        server_urls(args.server)
    except ValueError as exc:
        print(f"tablao manager: --server: {exc}", file=sys.stderr)
        return 2
    try:
        token = read_named_text(args.token_file, SECRET_BYTES, "a Manager token file").strip()
    except UnreadableFile as exc:
        print(f"tablao manager: --token-file: {exc}", file=sys.stderr)
        return 2
    if not token:
        print(f"tablao manager: --token-file: {args.token_file} is empty", file=sys.stderr)
        return 2
    if problem := token_problem(token):  # it goes in a header: a line break there is a 400 at every call
        print(f"tablao manager: --token-file: the token in {args.token_file} is not usable: {problem}", file=sys.stderr)
        return 2
    if problem := tls.listen_problem(args.host, args.tls_cert, args.tls_key, insecure_http=args.insecure_http):
        print(f"tablao manager: cannot start: {problem}", file=sys.stderr)
        return 2
    if "https:" in args.server and (problem := tls.ca_bundle_problem(args.ca_bundle)):
        print(f"tablao manager: cannot start: {problem}", file=sys.stderr)
        return 2
    try:
        config = ManagerConfig.from_env(
            args.server, token, data_dir=args.data_dir, host=args.host, port=args.port, name=args.name,
            worker_timeout=args.worker_timeout, blocklist_threshold=args.blocklist_threshold,
            prefetch_margin=args.prefetch_margin, variables=args.variables, ca_bundle=args.ca_bundle,
            public_url=args.public_url,
        )  # fmt: skip
    except ValueError as exc:  # a bad environment variable, named in the message
        print(f"tablao manager: {exc}", file=sys.stderr)
        return 2
    if config.port and (busy := busy_message(config.host, config.port, "Manager", choose="--port N")):
        print(f"tablao manager: cannot start: {busy}", file=sys.stderr)
        return 2
    if problem := start_problem(server_urls(config.server_url), token, args.token_file, args.ca_bundle):
        print(f"tablao manager: cannot start: {problem}", file=sys.stderr)
        return 2
    # the registration secret was read; keep it out of /proc/PID/environ and this process out of reach
    process_guard.forget_env(["TABLAO_WORKER_REGISTRATION_SECRET"])
    process_guard.harden()
    process_guard.private_files()  # the store, its WAL and logs: 0600
    try:
        # before the store's check: --fresh-store must not set aside the store of a Manager that is running
        lock = hold_data_dir(config.data_dir)
    except dir_lock.InUse as exc:
        holder = f" (process {exc.pid})" if exc.pid is not None else ""
        print(
            f"tablao manager: cannot start: another Manager{holder} is running with the data directory "
            f"{config.data_dir}; each Manager needs its own --data-dir",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"tablao manager: cannot start: --data-dir: {exc}", file=sys.stderr)
        return 2
    try:
        return _checked_run(args, config)
    finally:
        lock.release()


def hold_data_dir(data_dir: Path) -> dir_lock.DirLock:
    """One Manager per data directory: two would claim for one store and hand its tasks out twice."""
    process_guard.private_dir(data_dir)
    lock = dir_lock.DirLock(data_dir / LOCK_NAME)
    lock.acquire()
    return lock


def _checked_run(args: argparse.Namespace, config: ManagerConfig) -> int:
    try:
        check_owner(config.data_dir, config.server_url, config.token, fresh=args.fresh_store)
        check_store(config.data_dir, fresh=args.fresh_store)
    except StoreUnusable as exc:
        print(f"tablao manager: cannot start: {exc}", file=sys.stderr)
        return 2
    secret_from = (
        "TABLAO_WORKER_REGISTRATION_SECRET" if config.registration_secret else str(config.registration_secret_file())
    )
    try:  # read before serving: a bad secret file is one line here, a traceback in the app's start-up
        config.registration_secret = registration_secret(config)
    except ValueError as exc:
        print(f"tablao manager: cannot start: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    try:
        server = quick_server(
            app, host=config.host, port=config.port, loop="uvloop",
            log_level=args.log_level, access_log=False,
            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
        )  # fmt: skip
    except ValueError as exc:  # TABLAO_REQUEST_IDLE_SECONDS
        print(f"tablao manager: {exc}", file=sys.stderr)
        return 2
    # where the secret every worker is given is: the admin copies it from there
    address = f"{tls.scheme(args.tls_cert)}://{cli_args.url_host(config.host)}:{config.port or '(a free port)'}"
    print(f"Tablao Manager on {address} (worker registration secret: {secret_from})", flush=True)
    if args.port_file is not None:
        _report_port(server, args.port_file)
    if config.public_url is None:
        _learn_public_url(server, config, https=args.tls_cert is not None)
    gc_tuning.settle_long_lived()
    app.state.stop_serving = lambda: setattr(server, "should_exit", True)
    server.run()
    return 1 if getattr(app.state, "failed", False) else 0


def _report_port(server: uvicorn.Server, port_file: Path) -> None:
    """Write the bound port once uvicorn listens (so --port 0 works for tests and embedded mode)."""
    original = server.startup

    async def startup(sockets: object = None) -> None:
        await original(sockets)  # type: ignore[arg-type]
        for srv in server.servers:
            for sock in srv.sockets:
                tmp = port_file.with_suffix(".tmp")
                tmp.write_text(str(sock.getsockname()[1]))
                tmp.replace(port_file)
                return

    server.startup = startup  # type: ignore[method-assign]


def _learn_public_url(server: uvicorn.Server, config: ManagerConfig, https: bool) -> None:
    """Tell the Server the address listened on (with --port 0, known once bound)."""
    if config.port:
        config.public_url = config.listening_url(config.port, https)
        return
    original = server.startup

    async def startup(sockets: object = None) -> None:
        await original(sockets)  # type: ignore[arg-type]
        for srv in server.servers:
            for sock in srv.sockets:
                config.public_url = config.listening_url(int(sock.getsockname()[1]), https)
                return

    server.startup = startup  # type: ignore[method-assign]


if __name__ == "__main__":
    raise SystemExit(main())

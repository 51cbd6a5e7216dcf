"""`tablao all-in-one`: a Server, a Manager and local workers on this machine, with no configuration.

The Server listens on --port, the Manager on --port + 1; the admin token is in <data-dir>/server/admin.token.
Without --headless, `tablao all-in-one` opens the desktop app, which hosts the same services (embedded mode);
this module is the headless path and imports no Qt.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
from platformdirs import user_data_dir

from services.protocol import process_guard
from services.server.config import DEFAULT_PORT
from services.supervisor import Child, tablao_argv


def default_data_dir() -> Path:
    return Path(os.environ.get("TABLAO_DATA_DIR") or user_data_dir("tablao", appauthor=False))


def ensure_manager_token(server_url: str, admin_token: str, token_file: Path, name: str) -> None:
    """Register the local Manager once; its token is kept in token_file (mode 0600)."""
    if token_file.exists() and token_file.read_text().strip():
        return
    headers = {"Authorization": f"Bearer {admin_token}"}
    candidate = name
    for attempt in range(2, 50):
        r = httpx.post(f"{server_url}/api/v1/managers", json={"name": candidate}, headers=headers, timeout=10)
        if r.status_code == 201:
            from services.server.store.auth import write_secret

            write_secret(token_file, r.json()["token"])
            return
        if r.status_code != 409:
            raise RuntimeError(f"cannot register the local Manager: {r.text}")
        candidate = f"{name}-{attempt}"  # the token of an earlier one was lost with its file
    raise RuntimeError("cannot register the local Manager: too many with the same name")


def trust_args(data_dir: Path, output_roots: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The Server's and each worker's flags of a farm on this machine (docs/security.md).

    Outputs go under the render root, the demo's folder and what the user adds; tasks never reach the rest
    of the data directory, where every service keeps its secrets. Shared with the desktop app's farm.
    """
    roots = ("{render_root}", str(data_dir / "manager" / "render"), str(data_dir / "demo"), *output_roots)
    root_args = [arg for root in roots for arg in ("--output-root", root)]
    return root_args, ["--protect", str(data_dir), *root_args]


class LocalFarm:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        workers: int,
        host: str = "127.0.0.1",
        manager_args: tuple[str, ...] = (),
        worker_args: tuple[str, ...] = (),
        output_roots: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.server_url = f"http://{host}:{port}"
        self.manager_url = f"http://{host}:{port + 1}"
        server_dir, manager_dir = data_dir / "server", data_dir / "manager"
        self.admin_token_file = server_dir / "admin.token"
        self.manager_token_file = data_dir / "manager.token"
        self.render_root = manager_dir / "render"
        server_trust, worker_trust = trust_args(data_dir, output_roots)
        self.server = Child(
            "server",
            tablao_argv("server", "--data-dir", str(server_dir), "--host", host, "--port", str(port), *server_trust),
            server_dir / "server.log",
            health_url=f"{self.server_url}/api/v1/health",
        )
        self.manager = Child(
            "manager",
            tablao_argv("manager", "--server", self.server_url, "--token-file", str(self.manager_token_file),
                        "--data-dir", str(manager_dir), "--host", host, "--port", str(port + 1), "--name", "local",
                        *manager_args),
            manager_dir / "manager.log",
            health_url=f"{self.manager_url}/api/v1/health",
        )  # fmt: skip
        self.workers = [
            Child(
                f"worker-{i}",
                tablao_argv(
                    "worker",
                    "--manager",
                    self.manager_url,
                    "--name",
                    f"local-{i}",
                    "--data-dir",
                    str(data_dir / f"worker-{i}"),
                    "--registration-secret-file",
                    str(manager_dir / "worker-registration.secret"),
                    *worker_trust,
                    *worker_args,
                ),
                data_dir / f"worker-{i}" / "worker.log",
            )
            for i in range(1, workers + 1)
        ]

    @property
    def children(self) -> list[Child]:
        return [self.server, self.manager, *self.workers]

    def start(self) -> None:
        self.server.start()
        self.server.wait_healthy()
        ensure_manager_token(
            self.server_url, self.admin_token_file.read_text().strip(), self.manager_token_file, "local"
        )
        self.manager.start()
        self.manager.wait_healthy()
        for worker in self.workers:
            worker.start()

    def watch(self) -> None:
        """Restart a child that died on its own (a crash), within limits."""
        for child in self.children:
            if child.stopping or child.running or child.proc is None:
                continue
            code = child.exit_code
            if child.may_restart():
                print(f"{child.name} exited with {code}; restarting it. Last lines:\n{child.tail(5)}", flush=True)
                child.start()
            else:
                print(f"{child.name} keeps exiting (last code {code}); see {child.log_path}", flush=True)
                child.stopping = True

    def stop(self) -> None:
        # workers first, so they give their tasks back to a Manager that is still there
        for worker in self.workers:
            worker.stopping = True
            if worker.proc is not None and worker.running:
                worker.proc.terminate()
        for worker in self.workers:
            worker.stop()
        self.manager.stop()
        self.server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tablao all-in-one", description=__doc__.splitlines()[0])
    parser.add_argument("--headless", action="store_true", help="no desktop window (for servers)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the user data directory")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the Server's port; the Manager takes the next")
    parser.add_argument("--workers", type=int, default=2, help="local workers to start (0 for none)")
    parser.add_argument("--demo", action="store_true", help="render the sample scene once the farm is up")
    parser.add_argument(
        "--output-root", action="append", default=[], metavar="DIR",
        help="jobs may also write under this folder (repeatable; the render root is always one)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    data_dir = (args.data_dir or default_data_dir()).resolve()

    if not args.headless:
        parser.error("without --headless the desktop app runs the farm: start it with `tablao all-in-one`")

    # every service's data, logs and secrets in a 0700 folder, files 0600; this process holds the admin token
    process_guard.private_files()
    process_guard.private_dir(data_dir)
    process_guard.harden()
    farm = LocalFarm(data_dir, args.port, args.workers, output_roots=tuple(args.output_root))
    stop_requested = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        farm.start()
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        print(f"tablao all-in-one: cannot start the farm: {exc}", file=sys.stderr)
        farm.stop()
        return 1
    print(
        f"Tablao farm running on this machine:\n"
        f"  Server   {farm.server_url}   (admin token in {farm.admin_token_file})\n"
        f"  Manager  {farm.manager_url}   (renders under {farm.render_root})\n"
        f"  Workers  {len(farm.workers)}\n"
        f"  Data     {data_dir}\n"
        f"Submit with: tablao submit JOB.json --server {farm.server_url} --token-file {farm.admin_token_file}\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    demo = None
    if args.demo:
        from services.demo import DemoRun

        demo = DemoRun(farm.server_url, farm.admin_token_file.read_text().strip(), data_dir / "demo")
        demo.submit()
    while not stop_requested:
        farm.watch()
        if demo is not None and demo.poll():
            demo = None
        time.sleep(0.5)
    print("Stopping the farm…", flush=True)
    farm.stop()
    print("Stopped.", flush=True)
    return 0

"""The local farm: a Server on `port`, a Manager on `port + 1` and N workers, supervised on this machine.

One data directory holds one farm (`layout.FarmLayout`); its supervisor holds the directory's lock while it
runs and records every process it started (`records`). A start on a directory whose supervisor still runs is
refused (`FarmRunning`; the desktop app adopts that farm instead); processes an earlier run left behind (their
supervisor gone) are stopped, with one line saying so, since nothing would stop them with a supervisor now.
The app talks to a running farm through files in `<data>/farm/`: `owner.json` (stop when that process ends)
and `requests/<service>.<start|stop|restart>` or `requests/farm.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from services.localfarm import records
from services.localfarm.layout import FarmLayout
from services.localfarm.ports import busy_message
from services.localfarm.records import FarmLock, FarmRecord, ProcessRecord
from services.localfarm.supervisor import Child, ChildSpec, ChildState, Supervisor, tablao_argv
from services.protocol import process_guard
from services.protocol.link_probe import start_problem
from services.protocol.secret_files import write_secret

OWNER_FILE = "owner.json"
REQUESTS_DIR = "requests"
ABANDONED_WRITE_SECONDS = 60.0  # a request is written in well under a second
ACTIONS = ("start", "stop", "restart")


class FarmRunning(RuntimeError):
    """A farm already runs on this data directory (its supervisor holds the lock)."""

    def __init__(self, data_dir: Path, record: FarmRecord | None) -> None:
        sup = record.supervisor if record else None
        where = f" (supervisor pid {sup.pid}, Server {record.server_url})" if sup and record else ""
        super().__init__(
            f"a farm is already running on {data_dir}{where}; not starting another: use that one, stop it where it "
            "runs (Ctrl-C), or run a second farm on another folder and port (--data-dir or TABLAO_DATA_DIR, "
            "and --port; `make run` takes PORT=N)"
        )
        self.record = record


def display_name(name: str) -> str:
    """'worker-2' -> 'Worker 2': how the app and messages name a service."""
    return name.replace("-", " ").capitalize()


def trust_args(layout: FarmLayout, output_roots: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The Server's and each worker's flags of a farm on this machine (docs/security.md).

    Outputs go under the render root, the demo's folder and what the user adds; tasks never reach the rest of
    the data directory, where every service keeps its secrets.
    """
    roots = ("{render_root}", str(layout.render_root), str(layout.demo_dir), *output_roots)
    root_args = [arg for root in roots for arg in ("--output-root", root)]
    return root_args, ["--protect", str(layout.root), *root_args]


class LocalFarm:
    """Start, watch and stop one local farm. All methods run on one asyncio loop and never block it."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        workers: int,
        host: str = "127.0.0.1",
        manager_args: tuple[str, ...] = (),
        worker_args: tuple[str, ...] = (),
        output_roots: tuple[str, ...] = (),
        say: Callable[[str], None] = print,
        on_change: Callable[[Child], None] | None = None,
    ) -> None:
        self.layout = FarmLayout(data_dir)
        self.data_dir = data_dir
        self.host = host
        self.server_url = f"http://{host}:{port}"
        self.manager_url = f"http://{host}:{port + 1}"
        self.port = port
        self.say = say
        self._on_change = on_change
        self.lock = FarmLock(self.layout.farm_dir)
        self.supervisor = Supervisor(on_change=self._changed)
        lay = self.layout
        server_trust, worker_trust = trust_args(lay, output_roots)
        self.server = self.supervisor.add(
            ChildSpec(
                "server",
                tablao_argv(
                    "server", "--data-dir", str(lay.server_dir), "--host", host, "--port", str(port), *server_trust
                ),
                lay.server_dir / "server.log",
                health_url=f"{self.server_url}/api/v1/health",
            )
        )
        self.manager = self.supervisor.add(
            ChildSpec(
                "manager",
                tablao_argv("manager", "--server", self.server_url, "--token-file", str(lay.manager_token_file),
                            "--data-dir", str(lay.manager_dir), "--host", host, "--port", str(port + 1),
                            "--name", "local", *manager_args),
                lay.manager_dir / "manager.log",
                health_url=f"{self.manager_url}/api/v1/health",
            )
        )  # fmt: skip
        worker_extra = (*worker_trust, *worker_args)
        self.workers = [self.supervisor.add(self._worker_spec(i, worker_extra)) for i in range(1, workers + 1)]
        self.record = FarmRecord(server_url=self.server_url, manager_url=self.manager_url)

    def _worker_spec(self, i: int, extra: tuple[str, ...]) -> ChildSpec:
        lay = self.layout
        argv = tablao_argv(
            "worker", "--manager", self.manager_url, "--name", f"local-{i}", "--data-dir", str(lay.worker_dir(i)),
            "--registration-secret-file", str(lay.registration_secret_file), *extra,
        )  # fmt: skip
        return ChildSpec(f"worker-{i}", argv, lay.worker_dir(i) / "worker.log")

    @property
    def children(self) -> list[Child]:
        return self.supervisor.children

    @property
    def admin_token_file(self) -> Path:
        return self.layout.admin_token_file

    @property
    def render_root(self) -> Path:
        return self.layout.render_root

    def child(self, name: str) -> Child | None:
        return next((c for c in self.children if c.name == name), None)

    # -- the record -------------------------------------------------------------------------------------------

    def _changed(self, child: Child) -> None:
        if child.pid is not None:
            self.record.services[child.name] = ProcessRecord(
                child.name, child.pid, child.started_at, child.state.value, child.spec.health_url, child.exit_code
            )
            with contextlib.suppress(OSError):
                records.save(self.layout.farm_dir, self.record)
        if self._on_change is not None:
            self._on_change(child)

    # -- start ------------------------------------------------------------------------------------------------

    def claim(self, owner_pid: int | None = None, for_app: bool = False) -> None:
        """Take the data directory for this run: refuse if a farm runs there, stop what an earlier run left,
        check the ports. Raises FarmRunning, or RuntimeError with a one-line reason."""
        farm_dir = self.layout.farm_dir
        if not self.lock.acquire():
            raise FarmRunning(self.data_dir, records.load(farm_dir))
        earlier = records.load(farm_dir)
        if earlier is not None:
            left = records.leftovers(earlier, self.data_dir)
            if left:
                for _rec, proc in left:
                    with contextlib.suppress(psutil.Error):
                        proc.terminate()
                _gone, alive = psutil.wait_procs([p for _r, p in left], timeout=2)
                for proc in alive:
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                names = ", ".join(f"{r.name} (pid {r.pid})" for r, _p in left)
                self.say(f"Stopped {len(left)} processes an earlier run left behind: {names}")
        for port, role in ((self.port, "Server"), (self.port + 1, "Manager")):
            if message := busy_message(self.host, port, role):
                self.lock.release()
                raise RuntimeError(message)
        self.record = FarmRecord(
            supervisor=ProcessRecord.of("supervisor", os.getpid(), state="running"),
            server_url=self.server_url,
            manager_url=self.manager_url,
            for_app=for_app,
        )
        records.save(farm_dir, self.record)
        process_guard.private_dir(farm_dir / REQUESTS_DIR)
        take_requests(farm_dir)  # an earlier run's: not for this one
        set_owner(farm_dir, owner_pid)

    async def start(self) -> None:
        """Server, then the Manager (registered once with the Server), then the workers."""
        self.server.start()
        await self.server.wait_healthy()
        await self.ensure_manager_token()
        self.manager.start()
        await self.manager.wait_healthy()
        await self.start_workers()

    async def start_workers(self) -> None:
        secret = self.layout.registration_secret_file
        for _ in range(100):  # the Manager writes it at start-up
            if secret.exists():
                break
            await asyncio.sleep(0.1)
        for worker in self.workers:
            worker.start()

    async def ensure_manager_token(self, name: str = "local") -> None:
        """Register the local Manager once; its token is kept in manager.token (mode 0600). A token the Server
        refuses (the wrangler removed the local Manager) is replaced: its Manager would not start with it."""
        token_file = self.layout.manager_token_file
        if token_file.exists() and (token := token_file.read_text().strip()):
            if await asyncio.to_thread(start_problem, [self.server_url], token, token_file) is None:
                return
            self.say("The Server no longer knows the local Manager's token (it was removed); adding it again.")
        headers = {"Authorization": f"Bearer {self.admin_token_file.read_text().strip()}"}
        candidate = name
        async with httpx.AsyncClient(timeout=10) as http:
            for attempt in range(2, 50):
                r = await http.post(f"{self.server_url}/api/v1/managers", json={"name": candidate}, headers=headers)
                if r.status_code == 201:
                    write_secret(token_file, r.json()["token"])
                    return
                if r.status_code != 409:
                    raise RuntimeError(f"cannot register the local Manager: {r.text}")
                candidate = f"{name}-{attempt}"  # the token of an earlier one was lost with its file
        raise RuntimeError("cannot register the local Manager: too many with the same name")

    # -- run --------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the children and the requests in <data>/farm until `stop` is set, a stop is requested, or the
        owner (the app that started this farm) is gone."""
        ticks = 0
        while not stop.is_set():
            self.supervisor.check()
            await self._handle_requests(stop)
            ticks += 1
            if ticks % 5 == 0 and owner_gone(self.layout.farm_dir):
                self.say("The app that owned this farm is gone; stopping the farm.")
                stop.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):  # not wait_for, which can lose a cancel on 3.11
                    await stop.wait()

    async def _handle_requests(self, stop: asyncio.Event) -> None:
        for name, action in take_requests(self.layout.farm_dir):
            if name == "farm" and action == "stop":
                stop.set()
                return
            child = self.child(name)
            if child is None or action not in ACTIONS:
                continue
            if action in ("stop", "restart"):
                await child.stop()
            if action in ("start", "restart"):
                if child is self.manager:
                    await self.ensure_manager_token()
                child.start()

    # -- stop -------------------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Workers first (they give their tasks back to a Manager still there), then the Manager, then the Server."""
        await self.supervisor.stop_all([self.workers, [self.manager], [self.server]])
        if self.record.supervisor is not None:
            self.record.supervisor.state = "stopped"
            with contextlib.suppress(OSError):
                records.save(self.layout.farm_dir, self.record)
        set_owner(self.layout.farm_dir, None)
        self.lock.release()


# -- what other processes (the desktop app) use to talk to a farm's supervisor ----------------------------------


def set_owner(farm_dir: Path, pid: int | None) -> None:
    """Make the farm stop when process `pid` ends (None: run on its own, as when left running)."""
    path = farm_dir / OWNER_FILE
    if pid is None:
        path.unlink(missing_ok=True)
        return
    records.write_private(path, json.dumps({"pid": pid, "started": records.start_time(pid)}))


def owner_gone(farm_dir: Path) -> bool:
    """True when the farm has an owner and that very process (pid and start time) is no longer running."""
    try:
        raw = json.loads((farm_dir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    rec = ProcessRecord("owner", int(raw.get("pid", 0)), float(raw.get("started") or 0.0))
    return rec.pid > 0 and rec.process() is None


def request(farm_dir: Path, service: str, action: str) -> None:
    """Ask a running farm's supervisor to start, stop or restart one service ('farm', 'stop': the whole farm)."""
    folder = farm_dir / REQUESTS_DIR
    records.write_private(folder / f"{service}.{action}", str(time.time()))


def take_requests(farm_dir: Path) -> list[tuple[str, str]]:
    """The (service, action) requests waiting in the farm's folder, each removed as it is taken. A request still
    being written (its writer's temporary file) is left alone: taking it would make the writer's rename fail;
    one abandoned that long ago is removed."""
    folder = farm_dir / REQUESTS_DIR
    try:
        pending = sorted(folder.iterdir())
    except OSError:
        return []
    taken = []
    for path in pending:
        if path.name.endswith(records.TEMP_SUFFIX):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > ABANDONED_WRITE_SECONDS:
                    path.unlink()  # its writer died between writing and renaming
            continue
        path.unlink(missing_ok=True)
        name, _, action = path.name.rpartition(".")
        taken.append((name, action))
    return taken


def running_farm(layout: FarmLayout) -> FarmRecord | None:
    """The record of the farm running on this data directory (its supervisor alive and holding the lock)."""
    return records.running(layout.farm_dir)


def service_states(rec: FarmRecord) -> dict[str, ChildState]:
    """Each recorded service's state, as its supervisor last wrote it; a process gone since counts as stopped."""
    states = {}
    for name, srv in rec.services.items():
        try:
            state = ChildState(srv.state)
        except ValueError:
            state = ChildState.CRASHED
        if state in (ChildState.STARTING, ChildState.RUNNING) and srv.process() is None:
            state = ChildState.STOPPED
        states[name] = state
    return states

"""Builds the Server's FastAPI application: storage set-up, migrations, the first admin, routes, housekeeping.

All the Server's wiring is here: the engine and its session factories (with the store's commit hooks installed
on them and on nothing else), the event notifier and claim dispatcher of this app, and the sweeps its
housekeeping loop runs. Nothing registers itself at import time, so two apps in one process stay apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.protocol import API_PREFIX, VERSION, api_contract, process_guard
from services.protocol.backoff import Backoff
from services.protocol.body_limit import PUBLIC_BODY_BYTES, BodyLimit
from services.protocol.common import utcnow
from services.protocol.credentials_first import CredentialsFirst
from services.protocol.head_as_get import HeadAsGet
from services.protocol.input_guard import InputGuard
from services.protocol.stopping import AnswerWhenStopping
from services.protocol.trouble_log import TroubleLog
from services.server.api import ROUTERS, door, errors, manager_link, storage_errors
from services.server.api.deps import NEEDS_TOKEN
from services.server.api.manager_stores import ManagerStores
from services.server.background import Awake, Sweep, sweep_forever
from services.server.config import ServerConfig
from services.server.db import notify, problems, stuck_sessions
from services.server.db.engine import SQLITE_NAME, make_engine, sqlite_url, write_waited
from services.server.db.migrate import ServingLock, serving_lock, take_first_start_turn, upgrade
from services.server.db.problems import safe_url
from services.server.db.server_lock import hold_sqlite
from services.server.dispatch import Dispatcher
from services.server.jobtypes.registry import job_types
from services.server.store import events, lease_expiry, log_copies, orphans, silent, submit_keys, worker_history
from services.server.store.auth import bootstrap_admin, prune_expired_tokens
from services.server.store.sessions import open_sessions
from services.server.store.token_uses import TokenUses
from services.server.webhooks import deliver_forever

log = logging.getLogger(__name__)


SERVING_LOCK_CHECK = 10.0  # seconds between looks at this Server's hold of the serving lock (PostgreSQL)


async def _keep_serving(lock: ServingLock) -> None:
    """Takes the serving lock again whenever its connection was ended; says so, and when it could not."""
    said, lost = TroubleLog(), False
    try:
        while True:
            await asyncio.sleep(SERVING_LOCK_CHECK)
            taken_before = lock.taken
            try:
                held = await asyncio.to_thread(lock.check)
            except Exception as exc:  # the database out of reach: the requests say so too; tried again
                held, why = False, f"cannot reach the database ({type(exc).__name__})"
            else:
                why = "a newer version of Tablao migrates the database while this Server serves it: stop this Server"
            if held and (lost or lock.taken != taken_before):
                log.warning("the serving lock's connection had ended (a database restart?): the lock is held again")
            if not held and said.due(why):
                log.error("this Server does not hold the serving lock: %s", why)
            lost = not held
    finally:
        lock.close()


def create_app(config: ServerConfig) -> FastAPI:
    process_guard.private_dir(config.data_dir)  # 0700: the database and admin.token are the farm's keys
    if config.database_url is None:
        process_guard.private_file(config.data_dir / SQLITE_NAME)
    url = config.database_url or sqlite_url(config.data_dir)
    server_lock = hold_sqlite(url)  # SQLite serves one Server process: a second one stops here, saying why
    # a quarter lease: the leases the hung Server's locks kept others from renewing have not run out meanwhile
    hung_after = min(30.0, max(2.0, config.lease_seconds / 4))
    engine = make_engine(url, hung_after=hung_after)
    upgrade(engine)
    notifier = events.EventNotifier()  # wakes this app's event readers and waiting claims after a commit
    read_sessions, write_sessions = open_sessions(engine, notifier)
    with write_sessions() as session:
        take_first_start_turn(session)  # Servers starting together would each make the first admin
        bootstrap_admin(session, config.data_dir, config.admin_token)
        session.commit()

    # leases get one lease period of grace after a start, and after a stall of this process (see expire_leases)
    awake = Awake(stall_after=config.sweep_interval + config.lease_seconds / 4, write_waited=write_waited)
    builds = orphans.Builds()  # the jobs this process is writing: not orphans, however long they take
    # on SQLite this process is the only writer, so a job under construction from before its start is an orphan
    sole_since = utcnow() if server_lock is not None else None
    token_uses = TokenUses()  # the token checks note, a sweep writes
    silent_managers = silent.SilentManagers()  # announced offline by this process
    sweeps = [
        Sweep("prune events", lambda s: events.prune(s, config.event_retention_seconds)),
        Sweep("expire leases", lambda s: lease_expiry.expire_leases(s, config.lease_seconds, started=awake.since)),
        Sweep(
            "offline workers of silent managers",
            lambda s: silent.offline_workers_of_silent_managers(
                s, config.lease_seconds, started=awake.since, known=silent_managers
            ),
        ),
        Sweep(
            "offline workers nobody reports", lambda s: silent.offline_workers_nobody_reports(s, started=awake.since)
        ),
        Sweep("prune worker history", lambda s: worker_history.prune(s, config.history_seconds)),
        Sweep("tokens last used", token_uses.write),
        Sweep("prune canceled submission keys", submit_keys.prune_canceled),
        Sweep("prune expired tokens", prune_expired_tokens, repeat_for=2.0),
        Sweep("prune log uploads asked for", lambda s: log_copies.prune_asked(s, config.data_dir)),
        Sweep(
            "orphaned jobs under construction",
            lambda s: orphans.sweep(s, bound=config.orphan_seconds, builds=builds, started=sole_since),
            repeat_for=2.0,
        ),
    ]

    where = safe_url(str(engine.url))

    def storage_problem(exc: BaseException) -> str | None:
        return problems.describe(exc, where)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # PostgreSQL: held while this process serves, so a newer version's start refuses to migrate under it
        serving = await asyncio.to_thread(serving_lock, engine)
        tasks = [] if serving is None else [asyncio.create_task(_keep_serving(ServingLock(engine, serving)))]
        tasks += [
            asyncio.create_task(sweep_forever(write_sessions, sweeps, config.sweep_interval, awake, storage_problem)),
            asyncio.create_task(
                deliver_forever(read_sessions, write_sessions, notifier, config.webhooks, storage_problem)
            ),
        ]
        if engine.dialect.name == "postgresql":  # other Server processes' commits wake this one's readers
            tasks.append(asyncio.create_task(notify.listen(engine.url, notifier.notify)))
            # and a Server stopped in the middle of a statement does not stall them with the locks it holds
            tasks.append(asyncio.create_task(stuck_sessions.watch(engine.url, hung_after)))
        # the job types load on first use (entry points and their modules: a few hundred ms); load them now,
        # beside the first requests, rather than inside the farm's first submission
        warming = asyncio.get_running_loop().run_in_executor(None, _load_job_types)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await warming
            if serving is not None:
                serving.close()  # (a connection taken again instead is closed by _keep_serving's end)
            engine.dispose()
            if server_lock is not None:
                server_lock.release()

    app = FastAPI(
        title="Tablao Server",
        version=VERSION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served offline below
        redoc_url=None,
        lifespan=lifespan,
        # another spelling of a path (a trailing slash) is a 404, not a redirect to an address built from the
        # request's Host header (Starlette's default), which a client need not trust
        redirect_slashes=False,
    )
    app.state.config = config
    app.state.engine = engine
    app.state.read_sessions = read_sessions
    app.state.write_sessions = write_sessions
    app.state.notifier = notifier
    app.state.sweeps = sweeps
    app.state.awake = awake
    app.state.builds = builds
    app.state.sole_since = sole_since  # a repeat takes over a job under construction from before (orphans.py)
    app.state.token_cache = {}
    app.state.token_uses = token_uses
    app.state.manager_tokens_seen = {}  # the door's (api/door.py): Manager tokens found good lately
    app.state.refusal_reasons = {}  # why a token no user holds was refused (api/deps.py bad_user_token)
    app.state.auth_backoff = Backoff(free=config.auth_free_failures)  # bad tokens, per client address
    app.state.manager_stores = ManagerStores(config.lease_seconds)  # one Manager per Manager token
    app.state.login_backoff = Backoff(free=config.auth_free_failures)  # failed logins, per address and user
    app.state.dispatcher = Dispatcher()
    errors.install(app)
    storage_errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    api_contract.document_errors(app, errors.EXTRA_STATUSES)
    api_contract.serve_docs_offline(app, API_PREFIX)
    app.add_middleware(InputGuard)  # inside the body limit, which counts what it reads
    # a Manager's full task log is bigger than any other body: that one route has the log's own limit
    method, path = manager_link.LOG_UPLOAD_ROUTE
    route_limits = {
        (method, API_PREFIX + path): max(config.max_body_bytes, manager_link.MAX_LOG_BYTES),
        ("POST", API_PREFIX + "/auth/login"): PUBLIC_BODY_BYTES,  # anyone may call it: a user name and password
    }
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, route_limits=route_limits)
    # outside the others: a write without good credentials is refused before its body is read (logging in needs
    # none)
    manager_routes = API_PREFIX + manager_link.router.prefix + "/"
    app.add_middleware(
        CredentialsFirst,
        public={API_PREFIX + "/auth/login"},
        wanted=lambda _path: NEEDS_TOKEN,
        service=app,
        vouch=lambda scope, authorization: door.vouch(app.state, manager_routes, scope, authorization),
    )
    app.add_middleware(HeadAsGet)  # HEAD goes through everything as GET does
    app.add_middleware(AnswerWhenStopping)  # the very outermost: a request still open at a stop is a 503
    return app


def _load_job_types() -> None:
    try:
        job_types()
    except Exception:  # a broken job type is reported where it is used (submit, /job-types); not a reason to stop
        log.warning("could not load the job types ahead of their first use", exc_info=True)

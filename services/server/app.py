"""Builds the Server's FastAPI application: storage set-up, migrations, the first admin, routes, housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.protocol import API_PREFIX, VERSION, process_guard
from services.server.api import ROUTERS, errors, storage_errors
from services.server.background import sweep_forever
from services.server.config import ServerConfig
from services.server.db.engine import SQLITE_NAME, make_engine, make_sessionmakers, sqlite_url
from services.server.db.migrate import upgrade
from services.server.dispatch import Dispatcher
from services.server.store.auth import bootstrap_admin


def create_app(config: ServerConfig) -> FastAPI:
    process_guard.private_dir(config.data_dir)  # 0700: the database and admin.token are the farm's keys
    if config.database_url is None:
        process_guard.private_file(config.data_dir / SQLITE_NAME)
    url = config.database_url or sqlite_url(config.data_dir)
    engine = make_engine(url)
    upgrade(engine)
    read_sessions, write_sessions = make_sessionmakers(engine)
    with write_sessions() as session:
        bootstrap_admin(session, config.data_dir, config.admin_token)
        session.commit()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep_forever(write_sessions, config))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            engine.dispose()

    app = FastAPI(
        title="Tablao Server",
        version=VERSION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.engine = engine
    app.state.read_sessions = read_sessions
    app.state.write_sessions = write_sessions
    app.state.token_cache = {}
    app.state.dispatcher = Dispatcher()
    errors.install(app)
    storage_errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.add_middleware(errors.BodyLimit, max_bytes=config.max_body_bytes)
    return app

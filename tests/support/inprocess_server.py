"""A Server app in this process behind an httpx client, for tests that submit through the API without a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import func, select

from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.tables import JobRow, TaskRow


@asynccontextmanager
async def admin_client(config: ServerConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a Server made from `config`, sending its first admin's token; `client.app` is the app."""
    app = create_app(config)
    token = (config.data_dir / "admin.token").read_text().strip()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        app.state.engine.dispose()


def stored_jobs_and_tasks(client: httpx.AsyncClient) -> tuple[int, int]:
    """How many jobs and tasks the client's Server has stored."""
    with client.app.state.read_sessions() as session:  # type: ignore[attr-defined]
        jobs = session.scalar(select(func.count()).select_from(JobRow)) or 0
        tasks = session.scalar(select(func.count()).select_from(TaskRow)) or 0
    return jobs, tasks

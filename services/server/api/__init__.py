"""The Server's HTTP routes, one router per resource, all under /api/v1."""

from fastapi import APIRouter

from services.server.api import (
    admin,
    auth,
    events,
    failures,
    farm,
    jobs,
    manager_link,
    previews,
    task_logs,
    tasks,
    webhooks,
    workers,
)

ROUTERS: list[APIRouter] = [
    farm.router,
    auth.router,
    jobs.router,
    tasks.router,
    events.router,
    manager_link.router,
    previews.router,
    failures.router,
    task_logs.router,
    admin.router,
    webhooks.router,
    workers.router,
]

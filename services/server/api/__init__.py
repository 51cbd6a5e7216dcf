"""The Server's HTTP routes, one router per resource, all under /api/v1."""

from fastapi import APIRouter

from services.server.api import auth, events, farm, jobs, manager_link, tasks, workers

ROUTERS: list[APIRouter] = [
    farm.router,
    auth.router,
    jobs.router,
    tasks.router,
    events.router,
    manager_link.router,
    workers.router,
]

"""Last-rendered previews: the latest thumbnail of a job or a worker, and what it shows (any signed-in user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response

from services.protocol.common import Id
from services.protocol.preview import LastRendered
from services.server.api.deps import ReadSessionDep, UserDep
from services.server.db.tables import LastRenderedRow
from services.server.store import previews as store

router = APIRouter(tags=["previews"])

WorkerId = Annotated[str, Path(min_length=1, max_length=64)]
IfNoneMatch = Annotated[str | None, Header(max_length=200)]

_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/webp": {}}, "description": "the image"},
    304: {"description": "unchanged since the ETag sent in If-None-Match"},
}


def _image(row: LastRenderedRow, if_none_match: str | None) -> Response:
    etag = f'"{row.scope}-{row.owner}-{row.version}"'
    # the bytes are a Manager's, never checked to be an image: a browser must not guess another type from them
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(row.data, media_type=row.content_type, headers=headers)


@router.get("/jobs/{job_id}/last-rendered", response_class=Response, responses=_IMAGE)
def job_last_rendered(job_id: Id, session: ReadSessionDep, _: UserDep, if_none_match: IfNoneMatch = None) -> Response:
    """The latest thumbnail (≤ 512 px, JPEG) of a frame this job's tasks saved; 404 before the first."""
    return _image(store.get(session, store.JOB, str(job_id)), if_none_match)


@router.get("/jobs/{job_id}/last-rendered/info")
def job_last_rendered_info(job_id: Id, session: ReadSessionDep, _: UserDep) -> LastRendered:
    """Which task and worker rendered the latest thumbnail of this job, its size and the full frame's path."""
    return store.to_wire(store.get(session, store.JOB, str(job_id)))


@router.get("/workers/{worker_id}/last-rendered", response_class=Response, responses=_IMAGE)
def worker_last_rendered(
    worker_id: WorkerId, session: ReadSessionDep, _: UserDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The latest thumbnail a worker rendered (of whichever job); 404 before the first."""
    return _image(store.get(session, store.WORKER, worker_id), if_none_match)


@router.get("/workers/{worker_id}/last-rendered/info")
def worker_last_rendered_info(worker_id: WorkerId, session: ReadSessionDep, _: UserDep) -> LastRendered:
    return store.to_wire(store.get(session, store.WORKER, worker_id))

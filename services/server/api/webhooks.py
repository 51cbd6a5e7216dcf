"""Routes for the farm's webhooks (admins only): the URLs the Server calls when jobs complete or fail."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.protocol.admin import Webhook, WebhookCreate, WebhookCreated, WebhookQueued, WebhookUpdate
from services.protocol.common import SmallId
from services.server.api.deps import AdminDep, ReadSessionDep, SessionDep
from services.server.store import webhooks as store

router = APIRouter(tags=["webhooks"])


@router.get("/webhooks")
def list_webhooks(session: ReadSessionDep, _: AdminDep) -> list[Webhook]:
    return store.list_all(session)


@router.post("/webhooks", status_code=201)
def create_webhook(req: WebhookCreate, session: SessionDep, admin: AdminDep) -> WebhookCreated:
    """A new webhook; the answer carries its signing secret, shown this once."""
    row, secret = store.create(session, req, admin.name)
    session.commit()
    return WebhookCreated(**store.to_wire(row).model_dump(), secret=secret)


@router.patch("/webhooks/{webhook_id}")
def change_webhook(webhook_id: SmallId, req: WebhookUpdate, session: SessionDep, _: AdminDep) -> Webhook:
    row = store.change(session, webhook_id, req)
    session.commit()
    return store.to_wire(row, store.pending_counts(session).get(row.id, 0))


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: SmallId, session: SessionDep, _: AdminDep) -> Response:
    """Remove a webhook with the calls still waiting for it."""
    store.remove(session, webhook_id)
    session.commit()
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/test", status_code=202)
def test_webhook(webhook_id: SmallId, session: SessionDep, admin: AdminDep) -> WebhookQueued:
    """Queue a `ping` call to this webhook (enabled or not), delivered like any other."""
    key = store.queue_ping(session, webhook_id, admin.name)
    session.commit()
    return WebhookQueued(id=key)

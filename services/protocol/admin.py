"""Wire models of the farm's administration: changing users, and the webhooks the Server calls on job events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field

from services.protocol.common import JSON_TEXT, ResponseModel, WireModel
from services.protocol.states import Role

URL_MAX_CHARS = 2000
# no space at either end: `hook ` beside `hook` would look like one webhook
WEBHOOK_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 ._@-]{0,62}[A-Za-z0-9._@-])?$"


class UserUpdate(WireModel):
    """An admin changes a user: its role, whether it may still log in and use its tokens, its password."""

    role: Annotated[Role | None, JSON_TEXT] = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)


class WebhookEvent(StrEnum):
    JOB_COMPLETED = "job-completed"
    JOB_FAILED = "job-failed"
    JOB_CANCELED = "job-canceled"
    PING = "ping"  # sent only by "send a test call"; not subscribable


SUBSCRIBABLE = (WebhookEvent.JOB_COMPLETED, WebhookEvent.JOB_FAILED, WebhookEvent.JOB_CANCELED)


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials, no spaces or control characters, that httpx (the
    Server's webhook deliverer) can send a call to."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (use a token in the path or query instead)")
    if port == 0:
        raise ValueError("port 0 is not a port")
    # urlsplit takes host names httpx refuses (`☃.com`, which IDNA does not allow, `1.2.3.999`, a malformed
    # `xn--` label): a webhook with one was stored, then each call to it failed the deliverer's whole round
    try:
        httpx.Request("POST", url)
    except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors (UnicodeError)
        raise ValueError(f"not a URL a call can be sent to: {exc}") from exc
    return url


# what the document says of the URL (the check below says more: a host httpx takes, a port in range)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?::(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5]))?"
# an ASCII host (a name IDNA would take is allowed too, but the document cannot say which those are)
_URL_PATTERN = rf"^https?://(?:\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})*){_PORT}(?:[/?#][^\x00-\x20\x7f]*)?$"
WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=URL_MAX_CHARS, json_schema_extra={"pattern": _URL_PATTERN}),
    AfterValidator(check_webhook_url),
]


def _events(events: list[WebhookEvent]) -> list[WebhookEvent]:
    if WebhookEvent.PING in events:
        raise ValueError("ping is sent only by a test call; subscribe to job events")
    return sorted(set(events), key=SUBSCRIBABLE.index)


Events = Annotated[
    list[Annotated[WebhookEvent, JSON_TEXT]],
    # the document offers only the events one may subscribe to
    Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        json_schema_extra={"items": {"type": "string", "enum": [e.value for e in SUBSCRIBABLE]}},
    ),
    AfterValidator(_events),
]


class WebhookCreate(WireModel):
    name: str = Field(pattern=WEBHOOK_NAME_PATTERN)
    url: WebhookUrl
    events: Events = Field(default_factory=lambda: [WebhookEvent.JOB_COMPLETED, WebhookEvent.JOB_FAILED])
    enabled: bool = True


class WebhookUpdate(WireModel):
    url: WebhookUrl | None = None
    events: Events | None = None
    enabled: bool | None = None


class Webhook(ResponseModel):
    id: int
    name: str
    url: str
    events: list[WebhookEvent]
    enabled: bool
    created: datetime
    created_by: str
    pending: int = 0  # calls waiting in the outbox
    last_delivered: datetime | None = None
    last_error: str = ""  # the last failed call's reason, kept until a call succeeds


class WebhookCreated(Webhook):
    """The answer to creating a webhook: with the signing secret, shown this once."""

    secret: str


class WebhookQueued(ResponseModel):
    """A test call was put in the outbox; `id` is its idempotency key."""

    id: str

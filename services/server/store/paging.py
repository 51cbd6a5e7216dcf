"""Opaque keyset cursors: a page continues after the (sort value, id) of the last row shown."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from services.server.store.errors import Invalid


def encode(sort_value: Any, row_id: int) -> str:
    if isinstance(sort_value, datetime):
        sort_value = {"t": sort_value.isoformat()}
    raw = json.dumps([sort_value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = json.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["t"])
        if not isinstance(row_id, int):
            raise TypeError
    except (ValueError, TypeError, KeyError) as exc:
        raise Invalid("not a cursor this server made", field="cursor") from exc
    return value, row_id

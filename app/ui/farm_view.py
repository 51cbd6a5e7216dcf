"""The farm view at the top of the workers tab: busy, idle and offline workers and tasks per minute, as the
Server counts them (`GET /farm/status`), refreshed every few seconds off the UI thread."""

from __future__ import annotations

import asyncio

import httpx

from app.models.sync import FarmSync
from app.qt import QLabel, QWidget, plain_label
from services.protocol.farm import FarmStatus
from services.protocol.server_client import ApiError

REFRESH_SECONDS = 10.0


def farm_text(s: FarmStatus) -> str:
    rate = f"{s.tasks_per_minute:.1f}".rstrip("0").rstrip(".")
    return (
        f"Farm: {s.workers_busy} busy · {s.workers_idle} idle · {s.workers_offline} offline · "
        f"{rate} tasks/min (last {s.rate_minutes} min)"
    )


class FarmHeader(QLabel):
    def __init__(self, sync: FarmSync, parent: QWidget | None = None) -> None:
        super().__init__("Farm: …", parent)
        plain_label(self)
        self.setObjectName("farm-view")
        self.setStyleSheet("padding: 4px 8px; font-weight: bold;")
        self.sync = sync
        self.status: FarmStatus | None = None
        self._busy: asyncio.Task[None] | None = None
        self._last = 0.0

    def refresh(self, force: bool = False) -> None:
        """Ask the Server again, unless a request is under way or the last answer is recent."""
        loop = asyncio.get_event_loop()
        if self._busy is not None and not self._busy.done():
            return
        if not force and loop.time() - self._last < REFRESH_SECONDS:
            return
        self._last = loop.time()
        self._busy = self.sync.spawn(self.load())

    async def load(self) -> None:
        # quietly: the connection line already says when the Server is away; a bar message every 10 s would not
        try:
            self.status = await self.sync.client.farm_status()
        except (httpx.HTTPError, ApiError) as exc:
            self.setText(f"Farm: no answer from the Server ({type(exc).__name__})")
            return
        self.setText(farm_text(self.status))

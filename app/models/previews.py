"""The last-rendered preview of one job or one worker, as the app shows it: fetched when the event stream says
a new one exists, decoded off the UI thread, and kept with what it shows (task, worker, the full frame's path).

A burst of announcements while a fetch runs costs one more fetch, not one per event: with twenty jobs each
rendering a frame a second, the app fetches only the shown job's and worker's images.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from app.models.sync import FarmSync
from app.qt import QImage, QObject, Signal
from services.protocol.preview import LastRendered

Scope = Literal["jobs", "workers"]


def decode(data: bytes) -> QImage:
    """A QImage from JPEG/WebP bytes (QImage, unlike QPixmap, may be made outside the UI thread)."""
    image = QImage()
    image.loadFromData(data)
    return image


class PreviewSource(QObject):
    """Follows the latest preview of whichever job (or worker) `show()` names; `changed` after each new one."""

    changed = Signal()

    def __init__(self, sync: FarmSync, scope: Scope, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sync = sync
        self.scope = scope
        self.owner: int | str | None = None
        self.info: LastRendered | None = None
        self.image: QImage | None = None
        self.frame_readable = False  # this computer can open the full-size frame
        self.fetches = 0
        self._again = False
        self._fetching: asyncio.Task[None] | None = None
        sync.store.preview_listeners.append(self._announced)

    def show(self, owner: int | str | None) -> None:
        if owner == self.owner:
            return
        self.owner, self.info, self.image, self.frame_readable = owner, None, None, False
        self.changed.emit()
        if owner is not None:
            self._fetch()

    def _announced(self, data: dict[str, Any]) -> None:
        if self.owner is None:
            return
        if self.scope == "jobs":
            ours, version = data.get("job_id") == self.owner, data.get("job_version")
        else:
            ours, version = data.get("worker_id") == self.owner, data.get("worker_version")
        if not ours or version is None or (self.info is not None and int(version) <= self.info.version):
            return
        self._fetch()

    def _fetch(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            self._again = True  # fetch once more when this one ends: the newest wins
            return
        self._fetching = self.sync.spawn(self._load(self.owner))

    async def _load(self, owner: int | str | None) -> None:
        while owner is not None and owner == self.owner:
            self._again = False
            got = await self.sync.client.last_rendered(self.scope, owner)
            if got is not None and owner == self.owner:
                info, data = got
                image = await asyncio.to_thread(decode, data)
                readable = await asyncio.to_thread(os.access, info.frame_path, os.R_OK)
                if owner == self.owner and not image.isNull():
                    self.info, self.image, self.frame_readable = info, image, readable
                    self.fetches += 1
                    self.changed.emit()
            if not self._again:
                return

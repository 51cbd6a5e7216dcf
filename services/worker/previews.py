"""Turns a running task's saved frames into last-rendered previews, off the event loop, newest frame first.

A render may save frames faster than thumbnails are made (small frames take ~0.1 s each): only the newest frame
waiting is made into a preview, the ones it overtook are skipped. Each preview goes to `deliver` (the update
buffer), where the newest per task replaces an older one not sent yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from services.protocol.preview import Preview
from services.worker.thumbnail import NoThumbnail, can_try, make_thumbnail

log = logging.getLogger("tablao.worker.previews")

SETTLE_SECONDS = 5.0  # at the end of a task, how long its last preview may take before the final status


class PreviewMaker:
    def __init__(self, deliver: Callable[[Preview], None], note: Callable[[str], None] = lambda text: None) -> None:
        self.deliver = deliver
        self.note = note  # a line for the task log (why a frame gets no preview), once per reason
        self._latest: str | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._noted: set[str] = set()
        self.made = 0

    def offer(self, path: str) -> None:
        """A frame was saved (called from the runner's output parser)."""
        if not can_try(path):
            self._note_once(Path(path).suffix.lower(), f"no preview of {Path(path).name}: not an image Pillow reads")
            return
        self._latest = path
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Make previews until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            path, self._latest = self._latest, None
            if path is not None:
                await self._make(path)
            if self._latest is None:
                self._idle.set()

    async def settle(self, within: float = SETTLE_SECONDS) -> None:
        """Wait until the newest frame offered has been delivered (or given up on), at most `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):  # not wait_for, which can lose a cancel on 3.11
                await self._idle.wait()

    async def _make(self, path: str) -> None:
        try:
            thumb = await asyncio.to_thread(make_thumbnail, Path(path))
        except NoThumbnail as exc:
            self._note_once(str(exc).split(":", 1)[-1], str(exc))
            return
        except Exception:  # a preview must never fail a render
            log.exception("making a preview of %s failed", path)
            return
        self.deliver(thumb.preview(path))
        self.made += 1

    def _note_once(self, key: str, text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.note(text)

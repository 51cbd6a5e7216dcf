"""What the link to the Server knows of the Manager's store: whether it takes writes now, what was said of it.

A store on a full or failing disk takes no write; the link carries on (server_link.py: leases renewed with a
repeated batch, no claims until a probe write goes through) and says so in one line, again only when the trouble
changes or a minute later, and once when writes go through again. Logger: the link's, whose lines these are.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from services.manager.store.check import disk_problem, store_path
from services.manager.store.db import set_meta, transaction
from services.protocol.trouble_log import TroubleLog

log = logging.getLogger("services.manager.server_link")

STORE_ERRORS = (sqlite3.DatabaseError, OSError)  # the store took no write: a full disk, a failing one


class StoreHealth:
    def __init__(self, conn: Callable[[], sqlite3.Connection], data_dir: Path) -> None:
        self._conn = conn  # the core's, read at each use
        self.data_dir = data_dir
        self.trouble: str | None = None  # what is wrong with the store now (None: it takes writes)
        self._said = TroubleLog()  # a store that takes a write now and then is not logged at each turn either
        self._said_since = False  # a trouble was logged since the store last took writes

    def failed(self, exc: BaseException, consequence: str) -> None:
        """One line about the store's trouble, not one per retry or request: again when it changes or a minute
        later, with how many failed meanwhile. `consequence` says what waits meanwhile."""
        with contextlib.suppress(*STORE_ERRORS):
            if self._conn().in_transaction:  # a failed COMMIT may leave it open; later writes would join it
                self._conn().execute("ROLLBACK")
        uncut = self._cut_wal()
        what = disk_problem(exc, store_path(self.data_dir)) or f"the Manager's store failed: {exc!r}"
        self.trouble = what
        if self._said.due(what):  # (not by the log's size, which may change at each failure)
            held = self._said.held_back
            more = f" ({held} more failures since the last line)" if held else ""
            also = f" ({uncut})" if uncut else ""
            log.error("%s%s; %s, retrying%s", what, also, consequence, more)
            self._said_since = True

    def _cut_wal(self) -> str | None:
        """The write-ahead log is copied into the store only after a commit that went through, and on a full disk
        none does: it keeps up to 4 MB of the disk (1000 pages) for a store of a few hundred KB. Copied and cut
        now, that space comes back, and the writes may go on. The copy needs room in the store's file for the
        pages new to it, so on a disk full to the last block it can fail too: then said, not silent."""
        wal = store_path(self.data_dir).with_name(store_path(self.data_dir).name + "-wal")
        try:
            row = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except STORE_ERRORS as exc:
            reason = str(exc)
        else:
            if not row or not row[0]:
                return None
            reason = "the store was being read"
        try:
            size = f" ({wal.stat().st_size // 1024} KB)"
        except OSError:
            size = ""
        return f"its write-ahead log{size} could not be copied into the store to give the space back: {reason}"

    def takes_writes(self) -> bool:
        """A write of a few bytes, to learn whether the store took its trouble behind it."""
        try:
            with transaction(self._conn()):
                set_meta(self._conn(), "store_probe", str(time.time()))
        except STORE_ERRORS as exc:
            self.failed(exc, "no tasks are claimed")
            return False
        self.works()
        return True

    def works(self) -> None:
        if self.trouble is not None:
            self.trouble = None
            if self._said_since:
                log.info("the Manager's store takes writes again")
                self._said_since = False

"""A sweep that fails for the storage's sake (a full disk) says so in the one line the requests give, not with a
traceback every round; a sweep that fails for a bug still logs its traceback."""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.trouble_log import TroubleLog
from services.server import background
from services.server.background import Sweep, run_sweeps_once
from services.server.db import problems


def _full(_session: Session) -> None:
    raise OperationalError("UPDATE tasks", {}, sqlite3.OperationalError("database or disk is full"))


def _bug(_session: Session) -> None:
    raise RuntimeError("a bug in the sweep")


def test_a_full_disk_is_one_line_a_minute_and_a_bug_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "_storage_said", defaultdict(TroubleLog))
    sessions = sessionmaker(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    sweeps = [Sweep("expire leases", _full), Sweep("prune events", _bug)]
    caplog.set_level(logging.ERROR, logger="services.server.background")
    for _ in range(3):
        run_sweeps_once(sessions, sweeps, lambda exc: problems.describe(exc, "db.sqlite"))
    full = [r for r in caplog.records if "expire leases" in r.getMessage()]
    assert len(full) == 1 and full[0].exc_info is None, [r.getMessage() for r in full]
    assert "the disk holding the database db.sqlite is full" in full[0].getMessage()
    bugs = [r for r in caplog.records if "prune events" in r.getMessage()]
    assert len(bugs) == 3 and all(r.exc_info for r in bugs)

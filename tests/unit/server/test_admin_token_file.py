"""The admin.token file a Server writes at its first start (services/server/store/auth.bootstrap_admin)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from services.server.db.engine import make_engine, sqlite_url
from services.server.store.auth import bootstrap_admin, user_for_token
from tests.support.server_db import server_database


@pytest.mark.parametrize("left", [b"\xff\xfe\x00garbage", b"not a token of this farm\n", b""])
def test_an_admin_token_file_the_database_does_not_know_is_replaced(tmp_path: Path, left: bytes) -> None:
    """Hand-edited or put in place by mistake (even bytes that are not text): the start writes a working one."""
    server_database(tmp_path)
    (tmp_path / "admin.token").write_bytes(left)
    engine = make_engine(sqlite_url(tmp_path))
    try:
        with Session(engine) as session, session.begin():
            bootstrap_admin(session, tmp_path, None)
        token = (tmp_path / "admin.token").read_text().strip()
        with Session(engine) as session:
            found = user_for_token(session, token)
            assert found is not None and found[0].name == "admin"
        with Session(engine) as session, session.begin():  # the next start keeps it
            bootstrap_admin(session, tmp_path, None)
        assert (tmp_path / "admin.token").read_text().strip() == token
    finally:
        engine.dispose()

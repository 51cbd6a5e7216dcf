"""The Alembic migrations build exactly the schema the tables describe, on SQLite and PostgreSQL.

A table or column added to db/tables.py without a migration (or a migration that differs from it) fails here,
not on a studio's database at its next upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from services.server.db.migrate import SchemaProblem, alembic_config, serving_lock, upgrade
from services.server.db.tables import Base
from tests.support.databases import database_url


# SQLite's reflection cannot read an index on an expression (PostgreSQL's can); the test below checks that one
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index ux_users_name_lower")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index ux_managers_name_lower")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_the_migrated_schema_keeps_user_names_differing_only_in_case_out(db_kind: str, tmp_path: Path) -> None:
    with database_url(db_kind, tmp_path) as url:
        _names_differing_only_in_case_are_refused(url)


def _names_differing_only_in_case_are_refused(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (name, role, created) VALUES ('ana', 'artist', CURRENT_TIMESTAMP)"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO users (name, role, created) VALUES ('Ana', 'artist', CURRENT_TIMESTAMP)"))
    finally:
        engine.dispose()


def test_a_farm_with_names_differing_only_in_case_still_upgrades(db_kind: str, tmp_path: Path) -> None:
    """Pairs from before the rule stay (renaming would break logins); the index is left out, the upgrade goes on."""
    with database_url(db_kind, tmp_path) as url:
        _a_clashing_pair_stays(url)


def _a_clashing_pair_stays(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine, "0012")
        with engine.begin() as conn:
            for name in ("ana", "Ana"):
                conn.execute(
                    text(f"INSERT INTO users (name, role, created) VALUES ('{name}', 'artist', CURRENT_TIMESTAMP)")
                )
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 2
            head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    finally:
        engine.dispose()


_MANAGER = (
    "INSERT INTO managers (id, name, token_hash, created, last_seq) "
    "VALUES ({n}, '{name}', 'h{n}', CURRENT_TIMESTAMP, 0)"
)


def test_the_migrated_schema_keeps_manager_names_differing_only_in_case_out(db_kind: str, tmp_path: Path) -> None:
    with database_url(db_kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(engine)
            with engine.begin() as conn:
                conn.execute(text(_MANAGER.format(n=1, name="Render-A")))
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(text(_MANAGER.format(n=2, name="render-a")))
        finally:
            engine.dispose()


def test_a_farm_with_manager_names_differing_only_in_case_still_upgrades(db_kind: str, tmp_path: Path) -> None:
    """0018 on Managers `Render-A` and `render-a` registered before the rule: both stay, the index is left out."""
    with database_url(db_kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(engine, "0017")
            with engine.begin() as conn:
                for n, name in enumerate(("Render-A", "render-a"), 1):
                    conn.execute(text(_MANAGER.format(n=n, name=name)))
            upgrade(engine)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM managers")).scalar() == 2
                head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        finally:
            engine.dispose()


def test_a_farm_with_jobs_upgrades_to_submission_keys(db_kind: str, tmp_path: Path) -> None:
    """0014 on a farm that has jobs: they keep everything and have no key; one key per submitter from then on."""
    with database_url(db_kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(engine, "0013")
            with engine.begin() as conn:
                for n in (1, 2, 3):
                    conn.execute(
                        text(
                            "INSERT INTO jobs (id, name, type, settings, priority, submitter, tags, depends_on, "
                            "max_task_failures, on_task_failure, status, activity, created, updated, tasks_total, "
                            "tasks_completed, tasks_failed, tasks_canceled, tasks_active, task_types, tasks_timed, "
                            "task_seconds_total, task_seconds_max, tasks_running, running_since_total) VALUES "
                            f"({n}, 'j{n}', 'exec', '{{}}', 50, 'ana', '[]', '[]', 3, 'fail-job', 'queued', '', "
                            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 0, 0, 0, 0, '[]', 0, 0, 0, 0, 0)"
                        )
                    )
            upgrade(engine)
            with engine.begin() as conn:
                rows = conn.execute(text("SELECT id, name, submit_key, submit_digest FROM jobs ORDER BY id")).all()
                assert [tuple(r) for r in rows] == [(n, f"j{n}", None, None) for n in (1, 2, 3)]
                conn.execute(text("UPDATE jobs SET submit_key = 'k' WHERE id = 1"))
                conn.execute(text("UPDATE jobs SET submit_key = 'k', submitter = 'bo' WHERE id = 3"))  # bo's own
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(text("UPDATE jobs SET submit_key = 'k' WHERE id = 2"))
        finally:
            engine.dispose()


def test_a_database_of_a_newer_tablao_is_refused_saying_so(db_kind: str, tmp_path: Path) -> None:
    """Alembic said only "Can't locate revision identified by '0099'"."""
    with database_url(db_kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(engine)
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
            with pytest.raises(SchemaProblem, match=r"made by a newer version of Tablao \(its schema revision '0099'"):
                upgrade(engine)
        finally:
            engine.dispose()


def test_a_migration_waits_for_no_server_to_serve_the_database(tmp_path: Path) -> None:
    """A multi-Server audit: a newer Server migrated the shared schema under the older ones serving it."""
    with database_url("postgres", tmp_path) as url:
        engine = create_engine(url)
        try:
            head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert head is not None
            older = f"{int(head) - 1:04d}"
            upgrade(engine, older)
            serving = serving_lock(engine)  # a Server of that version, serving
            assert serving is not None
            with pytest.raises(SchemaProblem, match=r"1 Server process\(es\) of an older version serve this"):
                upgrade(engine)
            with engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() == older  # nothing changed
            serving.close()  # it stopped
            upgrade(engine)
            again = serving_lock(engine)  # a current one serving does not keep a start of its version out
            assert again is not None
            upgrade(engine)
            again.close()
        finally:
            engine.dispose()


def _holders(engine: Any) -> list[int]:
    """The backends holding SERVING_LOCK shared."""
    from services.server.db.migrate import SERVING_LOCK

    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted "
                    "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
                ),
                {"high": SERVING_LOCK >> 32, "low": SERVING_LOCK & 0xFFFFFFFF},
            ).scalars()
        )


def test_a_serving_lock_whose_connection_was_ended_is_taken_again(tmp_path: Path) -> None:
    """A multi-Server audit: the lock's connection ended (a PostgreSQL restart, pg_terminate_backend), the Server
    served on without it for good, and a newer version's start migrated the schema under it."""
    from services.server.db.migrate import ServingLock

    with database_url("postgres", tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(engine)
            first = serving_lock(engine)
            assert first is not None
            lock = ServingLock(engine, first)
            assert lock.check() and lock.taken == 1  # held: nothing to do
            (pid,) = _holders(engine)
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert _holders(engine) == []
            assert lock.check() and lock.taken == 2
            assert len(_holders(engine)) == 1 and _holders(engine) != [pid]
            # a newer version's migration holds it (exclusive, to its commit): not taken, and said so by the caller
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": _holders(engine)[0]})
                from services.server.db.migrate import SERVING_LOCK

                assert conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SERVING_LOCK}).scalar()
                assert lock.check() is False
                conn.rollback()
            assert lock.check() and len(_holders(engine)) == 1
            lock.close()
        finally:
            engine.dispose()

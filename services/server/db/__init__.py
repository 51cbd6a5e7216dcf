"""The Server's storage: tables, engine set-up and Alembic migrations."""

"""The Server's queries and changes, as plain functions taking a SQLAlchemy session."""

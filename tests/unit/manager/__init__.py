"""Unit tests of the Manager: its scheduler, store and failure handling, on real SQLite files."""

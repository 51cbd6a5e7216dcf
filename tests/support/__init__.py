"""Helpers for tests: start real services on 127.0.0.1 and databases to run them on."""

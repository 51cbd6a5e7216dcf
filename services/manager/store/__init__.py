"""The Manager's SQLite store: tasks held, workers, blocklist, task logs and the outgoing update buffer."""

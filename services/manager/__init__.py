"""The Tablao Manager: leases tasks from the Server and hands them out to the Workers of one site.

It holds its tasks and workers in memory (`core.py`, `workers.py`) written through to SQLite (`store/`), serves
the Worker API (`api/`) and talks to the Server only by its own requests (`server_link.py`).
"""

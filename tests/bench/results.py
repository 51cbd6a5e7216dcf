"""Benchmark figures as JSON lines, for `make bench-peers` (scripts/bench_peers.py) to put beside Celery's.

A benchmark calls `record(name, value)`; when TABLAO_BENCH_RESULTS names a file, one line is appended to it.
"""

from __future__ import annotations

import json
import os


def record(name: str, value: float) -> None:
    path = os.environ.get("TABLAO_BENCH_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, "value": value}) + "\n")

"""Polling for a condition in tests that drive real processes."""

from __future__ import annotations

import time
from typing import Any


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Call `check` every 0.1 s until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")

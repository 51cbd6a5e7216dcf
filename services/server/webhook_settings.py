"""How the Server calls the farm's webhooks: time limits, back-off and when to give up on a call."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass
class WebhookSettings:
    timeout: float = 10.0  # per call: connect, send and the receiver's answer
    backoff_min: float = 2.0  # the wait after the first failed call; doubled after each further one
    backoff_max: float = 600.0
    max_attempts: int = 20  # then the call is given up (about two hours of trying with the defaults)
    max_age_seconds: float = 24 * 3600.0  # a call older than this is given up whatever its attempts
    poll_seconds: float = 2.0  # the deliverer looks at least this often (commits wake it sooner)
    batch: int = 20  # calls claimed at once by one Server process
    concurrency: int = 8  # calls in flight at once per Server process

    @classmethod
    def from_env(cls) -> WebhookSettings:
        """Defaults, overridden by TABLAO_WEBHOOK_<FIELD> (e.g. TABLAO_WEBHOOK_BACKOFF_MAX=60)."""
        out = cls()
        for f in fields(cls):
            raw = os.environ.get(f"TABLAO_WEBHOOK_{f.name.upper()}")
            if raw is not None and raw.strip():
                setattr(out, f.name, int(raw) if f.type in ("int", int) else float(raw))
        return out

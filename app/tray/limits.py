"""What each tray setting may hold: one definition for the settings dialog, TraySettings.load and the command line.

A damaged or hand-edited value outside these falls back to the default when the settings load (one bad
rendering-hours window is left out alone), with a log line naming the setting. Qt-free, so `tablao tray`
checks its options before Qt loads.
"""

from __future__ import annotations

import math
import re

from services.protocol.cli_args import http_url
from services.protocol.tags import TAGS_MAX, tag_problem, worker_tags

MANAGER_URL = re.compile(r"^https?://[^/\s]+")
WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")  # as `tablao worker --name` wants it
TEXT_MAX_CHARS = 2000  # the Manager's address, the tags: each goes on the worker's command line
RENDER_THREADS_MAX = 4096  # 0: all CPUs
# away after: the dialog shows minutes with two decimals (0.02 min: 1.2 s); `tablao tray --away-after S` may
# give less, so any positive time up to the maximum is valid
AWAY_MINUTES_MIN_SHOWN = 0.02
AWAY_MINUTES_MAX = 240.0
HOURS_MAX_CHARS = 16_000  # seven days of eight windows as JSON take under 2,000


def valid_manager_url(url: str) -> bool:
    """A URL `tablao worker --manager` takes (no user info, query or fragment), so the worker can start."""
    if len(url) > TEXT_MAX_CHARS or MANAGER_URL.match(url) is None:
        return False
    try:
        http_url(url)
    except ValueError:
        return False
    return True


def tags_problem(text: str) -> str | None:
    """Why the tags setting ("gpu, linux") would stop the worker from starting, or None."""
    try:
        worker_tags(text)
    except ValueError as exc:
        return str(exc)
    return None


def usable_tags(text: str) -> tuple[str, list[str]]:
    """The tags of a setting the worker would take ("gpu, linux"), and those it would refuse (a setting saved
    before the tag rule, a hand edit): one bad tag must not cost the worker its good ones."""
    kept: list[str] = []
    refused: list[str] = []
    for tag in dict.fromkeys(part.strip() for part in text.split(",") if part.strip()):
        (refused if tag_problem(tag) or len(kept) >= TAGS_MAX else kept).append(tag)
    return ", ".join(kept), refused


def valid_worker_name(name: str) -> bool:
    return WORKER_NAME.fullmatch(name) is not None


def valid_render_threads(threads: float) -> bool:
    return math.isfinite(threads) and threads == int(threads) and 0 <= threads <= RENDER_THREADS_MAX


def valid_away_minutes(minutes: float) -> bool:
    return math.isfinite(minutes) and 0 < minutes <= AWAY_MINUTES_MAX

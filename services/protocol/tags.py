"""The one rule for a tag, wherever it is given: a worker's own (`--tags`, the tray's setting, its sign-on), a
wrangler's edit and a job's required ones, so a tag one of them accepts the others take back unchanged.

Free of pydantic, so the worker's and the tray's command lines check their options before loading much.
"""

from __future__ import annotations

import re

# matched whole (fullmatch): a pattern ending in `$` would let a trailing line break through
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}")
TAG_RULE = "letters, digits and . _ : @ + -, at most 64, the first a letter or digit"
TAGS_MAX = 50  # as many as a worker may offer at sign-on


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a tag, or None when it is one."""
    return None if TAG_PATTERN.fullmatch(tag) else f"{tag[:80]!r} is not a tag: {TAG_RULE}"


def worker_tags(text: str) -> list[str]:
    """A worker's tags as given on its command line or in the tray's settings ("gpu, linux"), duplicates
    dropped; ValueError naming the first that is not a tag, or when there are too many."""
    tags = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for tag in tags:
        if problem := tag_problem(tag):
            raise ValueError(problem)
    if len(tags) > TAGS_MAX:
        raise ValueError(f"at most {TAGS_MAX} tags, not {len(tags)}")
    return tags

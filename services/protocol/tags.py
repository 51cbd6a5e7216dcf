"""The one rule for a tag, wherever it is given: a worker's own (`--tags`, the tray's setting, its sign-on), a
wrangler's edit and a job's required ones, so a tag one of them accepts the others take back unchanged.

Free of pydantic, so the worker's and the tray's command lines check their options before loading much.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

# matched whole (fullmatch): a pattern ending in `$` would let a trailing line break through
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}")
TAG_RULE = "letters, digits and . _ : @ + -, at most 64, the first a letter or digit"
TAGS_MAX = 50  # as many as a worker may offer at sign-on


_NOT_IN_A_TAG = re.compile(r"[^A-Za-z0-9._:@+-]+")


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a tag, or None when it is one (saying the tag it would be)."""
    if TAG_PATTERN.fullmatch(tag):
        return None
    return f"{tag[:80]!r} is not a tag: {TAG_RULE} (as a tag: {normal_tag(tag)!r})"


def normal_tag(text: str) -> str:
    """The tag `text` stands for: itself when it is one. A job stored before the rule (`rtx 4090`) is matched
    through this, with what a worker now signs on with (`rtx-4090`, which `--tags` suggests): accented letters
    without their accents (`gpü`: `gpu`), each run of other characters a dash, no leading punctuation, 64 at most.
    Letters with no plain form (`日本`) cannot be dropped without making another tag (`gpu日本` is not `gpu`), so
    a text with any, or with nothing of a tag, ends in a hash of itself: no worker has such a tag by chance."""
    if TAG_PATTERN.fullmatch(text):
        return text
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    tag = _NOT_IN_A_TAG.sub("-", plain).lstrip("._:@+-").rstrip("-")
    # other punctuation and spaces are dashes (`rtx – 4090`: `rtx-4090`); a letter or digit is not dropped
    lost = any(not c.isascii() and unicodedata.category(c)[0] in "LN" for c in plain)
    if tag and not lost:
        return tag[:64].rstrip("-")
    digest = hashlib.sha256(text.encode(errors="replace")).hexdigest()[:8]
    return f"{tag[:55].rstrip('-')}-{digest}" if tag else f"tag-{digest}"


def required_tags(tags: Iterable[str] | None) -> set[str]:
    """A job's tags (as stored, some from before the rule) as the tags a worker must have."""
    return {normal_tag(t) for t in tags or ()}


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

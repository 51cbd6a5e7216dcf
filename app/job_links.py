"""`tablao://job/ID` links: the Blender add-on opens them, the desktop app shows the job they name.

On Linux a desktop entry with `MimeType=x-scheme-handler/tablao;` and `Exec=tablao %u` hands such links to
`tablao`, which opens the desktop app on the job (docs/blender.md).
"""

from __future__ import annotations

import re

SCHEME = "tablao"
_JOB = re.compile(r"^tablao://job/([0-9]{1,18})/?$", re.IGNORECASE)


def job_link(job_id: int) -> str:
    return f"{SCHEME}://job/{job_id}"


def is_link(text: str) -> bool:
    return text.lower().startswith(f"{SCHEME}://")


def job_of(link: str) -> int | None:
    """The job id a link names, or None when it names none (anything but `tablao://job/<digits>`)."""
    match = _JOB.match(link.strip())
    return int(match.group(1)) if match else None

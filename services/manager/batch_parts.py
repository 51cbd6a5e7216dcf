"""What goes into one update batch to the Server: worker reports fitted to a size, and the parts a refusal names."""

from __future__ import annotations

from services.protocol.link import WORKER_REPORTS_MAX, WorkerReport
from services.protocol.manager_client import LinkRefused

# worker reports in one batch: beside 300 updates, 100,000 held task ids and the previews, well inside the Server's
# body limit (8 MB by default) however many workers there are and however much each reports (up to ~0.4 MB)
REPORT_BYTES_PER_BATCH = 2 * 1024 * 1024
REPORTS_PER_BATCH = WORKER_REPORTS_MAX  # and as many worker rows as one write transaction at the Server takes


def refused_parts(exc: LinkRefused, part: str) -> set[int]:
    """The indexes into the batch's `part` list that the Server's 422 names (`part.N...`)."""
    return {
        int(parts[1])
        for err in exc.body.get("errors", [])
        if isinstance(err, dict)
        and len(parts := str(err.get("field", "")).split(".")) >= 2
        and parts[0] == part
        and parts[1].isdigit()
    }


def fit_reports(
    reports: list[WorkerReport], budget: int = REPORT_BYTES_PER_BATCH, most: int = REPORTS_PER_BATCH
) -> tuple[list[WorkerReport], list[WorkerReport]]:
    """The reports (in order) that fit `budget` bytes of JSON and `most` reports, at least one, and the rest for
    the next batch: a renewal carries every worker's report, and a batch the Server refuses as too big would be
    sent again for ever while every update after it waits."""
    used = 0
    for n, report in enumerate(reports):
        used += len(report.model_dump_json())
        if n and (used > budget or n >= most):
            return reports[:n], reports[n:]
    return reports, []

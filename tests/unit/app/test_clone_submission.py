"""Resubmitting a job makes it again as it was, with a tag stored before the tag rule given as the tag it stands
for now (the Server refuses the old text; the new one matches the same workers)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.job_info import clone_submission
from services.protocol.jobs import Job, JobSubmission, OnTaskFailure
from services.protocol.states import JobStatus


def test_a_resubmission_is_the_job_again_with_todays_tags() -> None:
    now = datetime.now(UTC)
    job = Job(
        id=7, name="shot-010", type="exec", settings={"command": ["true"], "frames": "1-3"}, priority=60,
        submitter="ana", tags=["gpu", "rtx 4090"], manager_id=None, depends_on=[3], max_task_failures=2,
        on_task_failure=OnTaskFailure.CONTINUE, status=JobStatus.COMPLETED, activity="", created=now, updated=now,
        tasks_total=3, tasks_completed=3, tasks_failed=0, tasks_active=0,
    )  # fmt: skip
    body = clone_submission(job)
    assert body["tags"] == ["gpu", "rtx-4090"]
    again = JobSubmission.model_validate(body)  # what the Server takes
    assert (again.name, again.priority, again.depends_on, again.max_task_failures) == ("shot-010", 60, [3], 2)

"""Fill the submission dialog with an existing job, for Clone: its type, name, priority, settings and the
fields beside them (tags, dependencies, Manager, failure limits), as the user would have typed them."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.job_info import EXTRA_FIELDS, clone_submission
from app.ui.openjd_form import OpenJDForm
from app.ui.submit_dialog import SubmitDialog
from services.protocol.jobs import Job


def fill_submit_dialog(dialog: SubmitDialog, job: Job) -> None:
    """After `dialog.load(preferred=job.type)`: the form shows the job; the user edits and submits."""
    body = clone_submission(job)
    dialog.name.setText(job.name)
    dialog.priority.setValue(job.priority)  # at most the role's cap: a new job's priority may not pass it
    if job.priority > dialog.priority.value():
        dialog.message.setText(
            f"{job.name} has priority {job.priority}, above the {dialog.priority.value()} the farm's policy lets "
            "your role give a new job: the new job gets that."
        )
    form = dialog.form
    if isinstance(form, OpenJDForm):
        _fill_openjd(dialog, form, job.settings)
    elif form is not None:
        form.fill(job.settings)
    dialog.job_fields.fill({k: body[k] for k in EXTRA_FIELDS})


def _fill_openjd(dialog: SubmitDialog, form: OpenJDForm, settings: dict[str, Any]) -> None:
    """The job carries its template, not the file it came from: the form reads a copy kept while it is open."""
    template = settings.get("template")
    if not isinstance(template, dict):
        return
    folder = Path(tempfile.mkdtemp(prefix="tablao-clone-"))
    dialog.destroyed.connect(lambda *_: shutil.rmtree(folder, ignore_errors=True))
    path = folder / f"{template.get('name') or 'template'}.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    form.set_value("template", str(path))
    if form.params is not None:
        form.params.fill(dict(settings.get("parameters") or {}))

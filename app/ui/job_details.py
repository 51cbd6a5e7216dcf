"""The selected job's details: its times and ETA, settings as submitted and as this machine reads them, output
folder, dependencies, tags and Manager; Clone (the submission dialog filled in) and Resubmit (the same again),
offered only for a job type the farm's policy lets the user submit (the Server's `/job-types` says which)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app import job_info
from app.models.access import UserAccess
from app.models.columns import fmt_time
from app.models.sync import ConnectionState, FarmSync
from app.qt import (
    QDesktopServices,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    Qt,
    QTabWidget,
    QTimer,
    QUrl,
    QVBoxLayout,
    QWidget,
    Signal,
    plain_label,
)
from app.ui.actions import Confirm, confirm_box
from app.ui.clone import fill_submit_dialog
from app.ui.submit_dialog import SubmitDialog
from services.protocol import resubmit, timing
from services.protocol.farm_paths import current_platform
from services.protocol.jobs import Job, JobTypeInfo
from services.protocol.server_client import ApiError

OpenUrl = Callable[[QUrl], bool]


class JobDetails(QWidget):
    """Follows one job of the store; refreshed every second (its times move with the clock)."""

    submitted = Signal(object)  # a Job made by Clone or Resubmit

    def __init__(
        self,
        sync: FarmSync,
        parent: QWidget | None = None,
        confirm: Confirm | None = None,
        open_url: OpenUrl | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("job-details")
        self.sync = sync
        self.confirm = confirm or confirm_box(self)
        self.open_url = open_url or QDesktopServices.openUrl
        self.platform = current_platform()
        self.job_id: int | None = None
        self.variables: dict[str, dict[str, str]] | None = None  # the farm's, fetched once
        self.access = access or UserAccess(self)  # a user not known: Clone and Resubmit offered, the Server decides
        # the farm's job types as the Server gives them to this user (may_submit): fetched when a job is first
        # shown, again at each connection (the farm's policy may have changed) and when the user or role changes
        self.job_types: dict[str, JobTypeInfo] | None = None
        self._types_loading = self._types_again = False
        self.dialogs: list[SubmitDialog] = []
        self._resubmit_keys = resubmit.SameKey()  # one key per job resubmitted, until the Server answers
        self.fields: dict[str, QLabel] = {}

        form = QFormLayout()
        for key, title in [
            ("job", "Job"), ("time", "Time"), ("eta", "ETA"), ("tasks", "Task times"), ("type", "Type"),
            ("submitter", "Submitter"), ("tags", "Tags"), ("manager", "Manager"), ("depends", "Depends on"),
            ("failures", "Failures"),
        ]:  # fmt: skip
            label = plain_label(QLabel(self))
            label.setObjectName(f"detail-{key}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            form.addRow(title, label)
            self.fields[key] = label
        self.output = plain_label(QLabel(self))
        self.output.setObjectName("detail-output")
        self.output.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder_button = QPushButton("Open folder", self)
        self.open_folder_button.setObjectName("open-output-folder")
        self.open_folder_button.clicked.connect(self.open_folder)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(self.open_folder_button)
        form.addRow("Output", out_row)

        self.settings_submitted = self._text("settings-submitted")
        self.settings_resolved = self._text("settings-resolved")
        self.settings_tabs = QTabWidget(self)
        self.settings_tabs.addTab(self.settings_submitted, "Settings as submitted")
        self.settings_tabs.addTab(self.settings_resolved, f"On this machine ({self.platform})")

        self.clone_button = QPushButton("Clone…", self)
        self.clone_button.setObjectName("clone-job")
        self.clone_tip = "Open the submission form filled in with this job's type, settings and fields"
        self.clone_button.setToolTip(self.clone_tip)
        self.clone_button.clicked.connect(lambda: self.sync.spawn(self._clone()))
        self.resubmit_button = QPushButton("Resubmit…", self)
        self.resubmit_button.setObjectName("resubmit-job")
        self.resubmit_tip = "Submit this job again as it is"
        self.resubmit_button.setToolTip(self.resubmit_tip)
        self.resubmit_button.clicked.connect(lambda: self.sync.spawn(self._resubmit()))
        self.message = plain_label(QLabel(self))
        self.message.setObjectName("detail-message")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clone_button)
        buttons.addWidget(self.resubmit_button)
        buttons.addWidget(self.message, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.settings_tabs, 1)
        layout.addLayout(buttons)
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self.refresh)
        self.clock.start()
        self.access.changed.connect(self._reload_job_types)
        sync.state_changed.connect(self._state_changed)
        self.show_job(None)

    def _text(self, name: str) -> QPlainTextEdit:
        text = QPlainTextEdit(self)
        text.setObjectName(name)
        text.setReadOnly(True)
        return text

    # --- showing --------------------------------------------------------------------------------
    def job(self) -> Job | None:
        return None if self.job_id is None else self.sync.store.jobs.get(self.job_id)

    def show_job(self, job_id: int | None) -> None:
        changed = job_id != self.job_id
        self.job_id = job_id
        if changed:
            self.message.setText("")
            self._show_settings()
        if self.variables is None and job_id is not None:
            self.variables = {}  # asked once; an old Server without the route leaves them empty
            self.sync.spawn(self._load_variables())
        if self.job_types is None and job_id is not None:
            self._reload_job_types()
        self.refresh()

    def _state_changed(self, state: str) -> None:
        if state == ConnectionState.CONNECTED and self.job_types is not None:
            self._reload_job_types()

    def _reload_job_types(self) -> None:
        if self._types_loading:  # the answer on its way may be from before the change: ask again after it
            self._types_again = True
            return
        self._types_loading, self._types_again = True, False
        self.sync.spawn(self._load_job_types())

    async def _load_job_types(self) -> None:
        try:
            infos = await self.sync.client.job_types()
        except (ApiError, httpx.HTTPError, OSError):
            return  # not known: both offered, the Server decides; asked again at the next connection
        finally:
            self._types_loading = False
        self.job_types = {info.name: info for info in infos}
        self.refresh()
        if self._types_again:
            self._reload_job_types()

    def submit_refusal(self, job: Job) -> str:
        """Why the user may not submit a job like this one (its type is reserved for other roles); empty when
        they may, or when the farm's job types are not known yet."""
        info = (self.job_types or {}).get(job.type)
        return self.access.submit_refusal(info) if info is not None else ""

    async def _load_variables(self) -> None:
        try:
            self.variables = await self.sync.client.farm_variables()
        except ApiError:
            self.variables = {}
        self._show_settings()
        self.refresh()

    def values(self) -> dict[str, str]:
        return job_info.variable_values(self.variables or {}, self.platform)

    def _show_settings(self) -> None:
        job = self.job()
        settings = job.settings if job is not None else {}
        self.settings_submitted.setPlainText(json.dumps(settings, indent=2) if job else "")
        resolved = job_info.resolve(settings, self.values())
        self.settings_resolved.setPlainText(json.dumps(resolved, indent=2) if job else "")

    def refresh(self) -> None:
        job = self.job()
        why = self.submit_refusal(job) if job is not None else ""
        for b, tip in ((self.clone_button, self.clone_tip), (self.resubmit_button, self.resubmit_tip)):
            b.setEnabled(job is not None and not why)
            b.setToolTip(why or tip)
        if job is None:
            for label in self.fields.values():
                label.setText("")
            self.output.setText("")
            self.open_folder_button.setEnabled(False)
            return
        if not self.settings_submitted.toPlainText() and job.settings:
            self._show_settings()  # the job arrived after it was chosen
        self.fields["job"].setText(f"{job.name} (#{job.id}), {job.status.value}")
        self.fields["time"].setText(self.time_text(job))
        self.fields["eta"].setText(self.eta_text(job))
        mean, longest = job_info.duration(job.task_seconds_mean), job_info.duration(job.task_seconds_max)
        self.fields["tasks"].setText(f"mean {mean}, longest {longest} ({job.tasks_timed} completed)" if mean else "")
        self.fields["type"].setText(f"{job.type}, priority {job.priority}")
        self.fields["submitter"].setText(job.submitter)
        self.fields["tags"].setText(", ".join(job.tags) or "none (any worker)")
        self.fields["manager"].setText(self.manager_text(job))
        self.fields["depends"].setText(self.depends_text(job))
        self.fields["failures"].setText(
            f"{job.max_task_failures} per task, then {job.on_task_failure.value}; {job.tasks_failed} failed"
        )
        folder = self.output_folder()
        self.output.setText(folder or "(this job type names no output folder)")
        self.open_folder_button.setEnabled(folder is not None and Path(folder).is_dir())

    def time_text(self, job: Job) -> str:
        if job.started is None:
            return "not started"
        now = datetime.now(UTC)
        end = f", last end {fmt_time(job.finished)}" if job.finished is not None else ""
        return f"{job_info.duration(timing.elapsed(job, now))} since {fmt_time(job.started)}{end}"

    def eta_text(self, job: Job) -> str:
        workers = timing.usable_workers(job, self.sync.store.workers.values())
        seconds = timing.job_estimate(job, workers, datetime.now(UTC))
        if seconds is None:
            if job.status.value not in ("queued", "active"):
                return ""
            why = "no worker can run it now" if workers == 0 else "after its first task completes"
            return f"unknown ({why})"
        return f"{job_info.duration(seconds)} with {workers} worker{'' if workers == 1 else 's'}"

    def manager_text(self, job: Job) -> str:
        if job.manager_id is None:
            return "any"
        m = self.sync.store.managers.get(job.manager_id)
        return f"{m.name} (#{m.id})" if m is not None else f"#{job.manager_id}"

    def depends_text(self, job: Job) -> str:
        parts = []
        for dep_id in job.depends_on:
            dep = self.sync.store.jobs.get(dep_id)
            parts.append(f"{dep.name} (#{dep_id}, {dep.status.value})" if dep else f"#{dep_id} (deleted)")
        return ", ".join(parts) or "none"

    def output_folder(self) -> str | None:
        """The job's output folder as this machine reads it (path variables resolved), if it names one."""
        job = self.job()
        where = job_info.output_location(job.type, job.settings) if job is not None else None
        return job_info.resolve(where, self.values()) if where is not None else None

    def open_folder(self) -> bool:
        folder = self.output_folder()
        return folder is not None and self.open_url(QUrl.fromLocalFile(folder))

    # --- actions --------------------------------------------------------------------------------
    async def _clone(self) -> None:
        await self.clone()

    async def clone(self) -> SubmitDialog | None:
        """The submission dialog with this job's type, settings and other fields filled in, for the user to edit."""
        job = self.job()
        if job is None:
            return None
        if why := self.submit_refusal(job):  # said now, not by a 403 once the form is filled in
            self.message.setText(why)
            return None
        dialog = SubmitDialog(self.sync.client, self.window(), self.access)
        dialog.setWindowTitle(f"Submit a job like {job.name}")
        dialog.submitted.connect(self.submitted.emit)
        dialog.finished.connect(lambda _r: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        self.dialogs.append(dialog)
        dialog.open()
        await dialog.load(preferred=job.type)
        if dialog._pending is not None:  # choosing the type in its box builds the form once more: fill the last
            await dialog._pending
        fill_submit_dialog(dialog, job)
        return dialog

    async def _resubmit(self) -> None:
        await self.resubmit()

    async def resubmit(self) -> Job | None:
        """Submit the same job again, once the user agrees."""
        job = self.job()
        if job is None:
            return None
        if why := self.submit_refusal(job):
            self.message.setText(why)
            return None
        body: dict[str, Any] = job_info.clone_submission(job)
        # a new job's priority may not pass the role's cap (a wrangler may have raised this one past it)
        priority = min(job.priority, self.access.highest_priority())
        body["priority"] = priority
        lowered = f" at priority {priority}, the most your role may give (it has {job.priority})"
        text = f"Submit {job.name!r} (#{job.id}) again, with the same settings"
        text += f"{lowered}?" if priority < job.priority else "?"
        if not self.confirm("Resubmit", text):
            return None
        self.message.setText("Submitting…")
        try:
            made = await self.sync.client.submit_job(body, self._resubmit_keys.key_for(job.id))
        except (ApiError, httpx.HTTPError, OSError) as exc:
            what = exc.detail if isinstance(exc, ApiError) else str(exc) or type(exc).__name__
            if not resubmit.maybe_made(exc) and isinstance(exc, ApiError):
                self._resubmit_keys.answered()
            # otherwise the key stays (an earlier try may have reached the Server): pressed again, the job it
            # may have made comes, never a second one
            if resubmit.refused(exc):
                self.message.setText(f"The Server refused it: {what}")
            else:
                self.message.setText(f"The Server did not answer ({what}); resubmit to retry.")
            return None
        self._resubmit_keys.answered()
        self.message.setText(f"Submitted again as job {made.id}.")
        self.submitted.emit(made)
        return made

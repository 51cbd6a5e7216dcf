"""The submission dialog's fields beyond a job type's settings: tags, dependencies, Manager, failure limits and
start paused, named as the Server's job submission model names them (services/protocol/jobs.py)."""

from __future__ import annotations

import re
from typing import Any

from app.qt import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    Qt,
    QVBoxLayout,
    QWidget,
    plain_label,
)
from app.ui.schema_form import ErrorLabel
from services.protocol.jobs import JobSubmission, OnTaskFailure
from services.protocol.server_client import ApiError, ServerClient

JOBS_SHOWN = 200  # the newest jobs offered as dependencies


def _max_length(name: str) -> int:
    """The list limit the Server's model sets, so the form checks the same before sending."""
    return int(next(getattr(m, "max_length") for m in JobSubmission.model_fields[name].metadata))  # noqa: B009


_TAGS_MAX = _max_length("tags")
_DEPENDS_MAX = _max_length("depends_on")
_FAILURE_CHOICES = {
    OnTaskFailure.FAIL_JOB: "fail the job, cancel its other tasks",
    OnTaskFailure.CONTINUE: "keep running the other tasks",
}


def split_tags(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", text.strip()) if t]


class JobFields(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Scheduling", parent)
        self.tags = QLineEdit(self)
        self.tags.setObjectName("job-tags")
        self.tags.setPlaceholderText("e.g. gpu linux: only workers with all these tags run it")
        self.depends_filter = QLineEdit(self)
        self.depends_filter.setPlaceholderText("Filter jobs by id, name or status")
        self.depends_filter.textChanged.connect(self._filter)
        self.depends = QListWidget(self)
        self.depends.setObjectName("job-depends-on")
        self.depends.setMaximumHeight(110)
        self.manager = QComboBox(self)
        self.manager.setObjectName("job-manager")
        self.manager.addItem("Any Manager", None)
        self.max_task_failures = QSpinBox(self)
        self.max_task_failures.setObjectName("job-max-task-failures")
        field = JobSubmission.model_fields["max_task_failures"]
        self.max_task_failures.setRange(1, 100)
        self.max_task_failures.setValue(int(field.default))
        self.max_task_failures.setToolTip("Failures of one task before it fails for good (retried until then)")
        self.on_task_failure = QComboBox(self)
        self.on_task_failure.setObjectName("job-on-task-failure")
        for value, label in _FAILURE_CHOICES.items():
            self.on_task_failure.addItem(label, value.value)
        self.start_paused = QCheckBox("Start paused (resume it from the jobs list)", self)
        self.start_paused.setObjectName("job-start-paused")
        self.note = plain_label(QLabel(self))
        self.note.setWordWrap(True)
        self.note.hide()
        self.errors = {
            name: ErrorLabel(self)
            for name in ("tags", "depends_on", "manager_id", "max_task_failures", "on_task_failure", "start_paused")
        }
        depends = QWidget(self)
        depends_box = QVBoxLayout(depends)
        depends_box.setContentsMargins(0, 0, 0, 0)
        depends_box.addWidget(self.depends_filter)
        depends_box.addWidget(self.depends)
        form = QFormLayout(self)
        for label, editor, key in (
            ("Tags", self.tags, "tags"),
            ("Depends on", depends, "depends_on"),
            ("Manager", self.manager, "manager_id"),
            ("Task failures allowed", self.max_task_failures, "max_task_failures"),
            ("When a task fails for good", self.on_task_failure, "on_task_failure"),
            ("", self.start_paused, "start_paused"),
        ):
            cell = QWidget(self)
            box = QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(2)
            box.addWidget(editor)
            box.addWidget(self.errors[key])
            form.addRow(label, cell)
        form.addRow(self.note)

    async def load(self, client: ServerClient) -> None:
        """Offer the farm's Managers and its newest jobs; what cannot be listed is said, not fatal."""
        problems = []
        try:
            managers = await client.managers()
        except ApiError as exc:
            problems.append(f"Managers: {exc.detail}")
            managers = []
        chosen = self.manager.currentData()
        self.manager.clear()
        self.manager.addItem("Any Manager", None)
        for m in managers:
            self.manager.addItem(f"{m.name} (#{m.id})", m.id)
        self.manager.setCurrentIndex(max(self.manager.findData(chosen), 0))
        try:
            jobs = (await client.list_jobs(limit=JOBS_SHOWN)).items
        except ApiError as exc:
            problems.append(f"jobs: {exc.detail}")
            jobs = []
        checked = set(self.depends_on())
        self.depends.clear()
        for job in jobs:
            item = QListWidgetItem(f"#{job.id}  {job.name}  ({job.status})", self.depends)
            item.setData(Qt.ItemDataRole.UserRole, job.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if job.id in checked else Qt.CheckState.Unchecked)
        self._filter(self.depends_filter.text())
        self.note.setText("Could not list " + "; ".join(problems) if problems else "")
        self.note.setVisible(bool(problems))

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.depends.count()):
            item = self.depends.item(i)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    def depends_on(self) -> list[int]:
        out = []
        for i in range(self.depends.count()):
            item = self.depends.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(int(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def set_depends_on(self, ids: list[int]) -> None:
        wanted = set(ids)
        for i in range(self.depends.count()):
            item = self.depends.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The submission's fields, and what is wrong with them before sending."""
        errors: dict[str, str] = {}
        tags = list(dict.fromkeys(split_tags(self.tags.text())))
        if len(tags) > _TAGS_MAX:
            errors["tags"] = f"at most {_TAGS_MAX} tags"
        elif long := [t for t in tags if len(t) > 64]:
            errors["tags"] = f"{long[0][:20]}…: a tag has at most 64 characters"
        depends = self.depends_on()
        if len(depends) > _DEPENDS_MAX:
            errors["depends_on"] = f"at most {_DEPENDS_MAX} jobs"
        self.show_errors(errors)
        body = {
            "tags": tags,
            "depends_on": depends,
            "manager_id": self.manager.currentData(),
            "max_task_failures": self.max_task_failures.value(),
            "on_task_failure": self.on_task_failure.currentData(),
            "start_paused": self.start_paused.isChecked(),
        }
        return body, errors

    def fill(self, job: dict[str, Any]) -> None:
        """Show a job's own fields (a job being cloned, say)."""
        self.tags.setText(" ".join(job.get("tags") or []))
        self.set_depends_on(list(job.get("depends_on") or []))
        self.manager.setCurrentIndex(max(self.manager.findData(job.get("manager_id")), 0))
        self.max_task_failures.setValue(int(job.get("max_task_failures") or 3))
        self.on_task_failure.setCurrentIndex(max(self.on_task_failure.findData(job.get("on_task_failure")), 0))
        self.start_paused.setChecked(bool(job.get("start_paused")))

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Errors by the Server's field names (`tags.3` goes under tags); returns those of other fields."""
        left = []
        mine: dict[str, list[str]] = {}
        for path, message in errors.items():
            head, _, rest = path.partition(".")
            if head in self.errors:
                mine.setdefault(head, []).append(f"{rest}: {message}" if rest else message)
            else:
                left.append(f"{path}: {message}")
        for name, label in self.errors.items():
            label.show_error("; ".join(mine.get(name, [])) or None)
        return left

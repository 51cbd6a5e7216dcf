"""The job submission dialog: name, type, priority and the type's own settings form; the Server's field
errors are shown next to their fields."""

from __future__ import annotations

import asyncio
from typing import Any

from app.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    Signal,
)
from app.schema import parse_schema
from app.ui.openjd_form import OpenJDForm
from app.ui.schema_form import ERROR_STYLE, ErrorLabel, SchemaForm
from services.openjd_submit import farm_path_values
from services.protocol.jobs import Job, JobTypeInfo
from services.protocol.server_client import ApiError, ServerClient


class SubmitDialog(QDialog):
    submitted = Signal(object)  # the Job the Server made

    def __init__(self, client: ServerClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Submit a job")
        self.resize(560, 520)
        self.client = client
        self.form: SchemaForm | None = None
        self.job_types: dict[str, JobTypeInfo] = {}
        self._pending: asyncio.Task[Any] | None = None

        self.type_box = QComboBox(self)
        self.type_box.currentIndexChanged.connect(self._type_chosen)
        self.name = QLineEdit(self)
        self.name.setObjectName("job-name")
        self.priority = QSpinBox(self)
        self.priority.setRange(0, 100)
        self.priority.setValue(50)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        self.common_errors = {"name": ErrorLabel(self), "priority": ErrorLabel(self)}
        # fields of the submission beside the form's (a cloned job's tags, dependencies, Manager, failure limits)
        self.extra_fields: dict[str, Any] = {}
        self.extra = QLabel(self)
        self.extra.setObjectName("submit-extra-fields")
        self.extra.setWordWrap(True)
        self.extra.hide()
        self.message = QLabel(self)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setWordWrap(True)
        self.message.setObjectName("submit-message")

        head = QFormLayout()
        head.addRow("Job type", self.type_box)
        head.addRow("Name *", self._with_error(self.name, self.common_errors["name"]))
        head.addRow("Priority", self._with_error(self.priority, self.common_errors["priority"]))
        self.form_holder = QVBoxLayout()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Submit")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.description)
        layout.addLayout(self.form_holder, 1)
        layout.addWidget(self.extra)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def _with_error(self, editor: QWidget, error: ErrorLabel) -> QWidget:
        cell = QWidget(self)
        box = QVBoxLayout(cell)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(editor)
        box.addWidget(error)
        return cell

    async def load(self, preferred: str | None = None) -> None:
        """Fetch the job types and build the form of the first (or `preferred`) one."""
        infos = await self.client.job_types()
        self.job_types = {}
        self.type_box.blockSignals(True)
        self.type_box.clear()
        for info in infos:
            self.job_types[info.name] = info
            self.type_box.addItem(info.label or info.name, info.name)
        self.type_box.blockSignals(False)
        index = self.type_box.findData(preferred) if preferred else 0
        self.type_box.setCurrentIndex(max(index, 0))
        await self.choose_type(self.type_box.currentData())

    def _type_chosen(self, _index: int) -> None:
        name = self.type_box.currentData()
        if name:
            self._pending = asyncio.ensure_future(self.choose_type(name))

    async def choose_type(self, name: str) -> None:
        # The list answer carries the schema too; ask for the one type so a newer Server's details show.
        try:
            info = await self.client.job_type(name)
        except ApiError as exc:
            self.message.setText(exc.detail)
            return
        self.job_types[name] = info
        if self.form is not None:
            self.form_holder.removeWidget(self.form)
            self.form.deleteLater()
        if name == "openjd":
            form = OpenJDForm(self)
            form.template_loaded.connect(self._template_named)
            self.form = form
        else:
            self.form = SchemaForm(parse_schema(info.settings_schema), self)
        self.form_holder.addWidget(self.form)
        self.description.setText(info.description)

    def _template_named(self, name: str) -> None:
        if name and not self.name.text().strip():
            self.name.setText(name)

    def submission(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The body to send, or None and the errors found before sending."""
        assert self.form is not None
        settings, errors = self.form.settings()
        common: dict[str, str] = {}
        if not self.name.text().strip():
            common["name"] = "is required"
        for key, label in self.common_errors.items():
            label.show_error(common.get(key))
        errors = {**{f"settings.{k}": v for k, v in errors.items()}, **common}
        if errors:
            self.message.setText("Please correct the fields marked in red.")
            return None, errors
        body = {
            "name": self.name.text().strip(),
            "type": self.type_box.currentData(),
            "settings": settings,
            "priority": self.priority.value(),
            **self.extra_fields,
        }
        return body, {}

    def set_extra_fields(self, fields: dict[str, Any]) -> None:
        """Send these with the job too, and say so under the form."""
        self.extra_fields = dict(fields)
        shown = [f"{k.replace('_', ' ')}: {v}" for k, v in fields.items() if v not in (None, [], "")]
        self.extra.setText("Also sent: " + "; ".join(shown) if shown else "")
        self.extra.setVisible(bool(shown))

    def submit(self) -> None:
        self._pending = asyncio.ensure_future(self.send())

    async def send(self) -> Job | None:
        body, _errors = self.submission()
        if body is None:
            return None
        self.message.setText("Submitting…")
        try:
            if isinstance(self.form, OpenJDForm) and self.form.template is not None:
                # PATH values in the farm's shared folders go as {variable}/rest, as `tablao submit` sends them
                variables = await self.client.farm_variables()
                settings = body["settings"]
                settings["parameters"] = farm_path_values(self.form.template, settings["parameters"], variables)
            job = await self.client.submit_job(body)
        except ApiError as exc:
            self.show_server_errors(exc)
            return None
        self.message.setText("")
        self.submitted.emit(job)
        self.accept()
        return job

    def show_server_errors(self, exc: ApiError) -> None:
        assert self.form is not None
        settings_errors: dict[str, str] = {}
        unplaced: list[str] = []
        for e in exc.errors:
            if e.field.startswith("settings."):
                key = e.field.removeprefix("settings.").split(".")[0]
                if key in self.form.editors:
                    settings_errors[key] = e.message
                    continue
            if e.field in self.common_errors:
                self.common_errors[e.field].show_error(e.message)
                continue
            unplaced.append(f"{e.field}: {e.message}")
        self.form.show_errors(settings_errors)
        self.message.setText("\n".join([f"The Server refused the job: {exc.detail}", *unplaced]))

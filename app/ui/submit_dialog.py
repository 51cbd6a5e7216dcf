"""The job submission dialog: name, type, priority, the type's own settings form and the job's scheduling
fields (tags, dependencies, Manager, failure limits, start paused); the Server's field errors are shown next
to their fields. The farm's policy is followed before sending: a job type the user may not submit is listed but
cannot be chosen (its tooltip says whom it is for), and the priority goes no higher than the user's role's cap.

Opened while the Server does not answer, it says so and loads the job types by itself once the Server answers:
it asks again with back-off while it is open, and at once when the app's link to the Server comes back
(`server_answering`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx

from app.models.access import UserAccess
from app.models.sync import ConnectionState
from app.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QStandardItemModel,
    QVBoxLayout,
    QWidget,
    Signal,
    plain_label,
)
from app.schema import parse_schema
from app.ui.job_fields import JobFields
from app.ui.openjd_form import OpenJDForm
from app.ui.schema_form import ERROR_STYLE, ErrorLabel, SchemaForm
from services.openjd_submit import farm_path_values
from services.protocol.jobs import PRIORITY_DEFAULT, Job, JobTypeInfo
from services.protocol.resubmit import SameKey
from services.protocol.server_client import ApiError, ServerClient

RETRY_FIRST = 0.5  # seconds before asking again for the job types; doubled each time, up to RETRY_MAX
RETRY_MAX = 5.0


class SubmitDialog(QDialog):
    submitted = Signal(object)  # the Job the Server made

    def __init__(self, client: ServerClient, parent: QWidget | None = None, access: UserAccess | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Submit a job")
        self.resize(620, 700)
        self.client = client
        self.access = access or UserAccess(self)  # a user not known: every type and priority offered
        self.form: SchemaForm | None = None
        self.job_types: dict[str, JobTypeInfo] = {}
        self._pending: asyncio.Task[Any] | None = None
        self._keys = SameKey()  # one Idempotency-Key while the form's body is unchanged
        self._loader: asyncio.Task[None] | None = None
        self._answering = asyncio.Event()  # set when the app's link to the Server is back: ask again now

        self.type_box = QComboBox(self)
        self.type_box.currentIndexChanged.connect(self._type_chosen)
        self.name = QLineEdit(self)
        self.name.setObjectName("job-name")
        self.priority = QSpinBox(self)
        self.priority.setObjectName("job-priority")
        self.priority.setValue(PRIORITY_DEFAULT)
        self._bound_priority()
        self.access.changed.connect(self._bound_priority)
        self.description = plain_label(QLabel(self))
        self.description.setWordWrap(True)
        self.common_errors = {"name": ErrorLabel(self), "priority": ErrorLabel(self)}
        self.message = plain_label(QLabel(self))
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setWordWrap(True)
        self.message.setObjectName("submit-message")

        head = QFormLayout()
        head.addRow("Job type", self.type_box)
        head.addRow("Name *", self._with_error(self.name, self.common_errors["name"]))
        head.addRow("Priority", self._with_error(self.priority, self.common_errors["priority"]))
        self.form_holder = QVBoxLayout()
        self.job_fields = JobFields(self)
        self.form_type: str | None = None  # the job type whose form is shown
        body = QWidget(self)
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(self.description)
        body_layout.addLayout(self.form_holder)
        body_layout.addWidget(self.job_fields)
        body_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Submit")
        ok.setEnabled(False)  # until a job type's form is shown
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def _with_error(self, editor: QWidget, error: ErrorLabel) -> QWidget:
        cell = QWidget(self)
        box = QVBoxLayout(cell)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(editor)
        box.addWidget(error)
        return cell

    def _bound_priority(self) -> None:
        """0 to the role's cap (the whole range without one): a new job's priority is checked against the cap."""
        self.priority.setRange(0, self.access.highest_priority())
        self.priority.setToolTip(self.access.priority_note())

    async def load(self, preferred: str | None = None) -> None:
        """Fetch the job types and build the form of the first (or `preferred`) one the user may submit; list
        Managers and jobs. A type the farm's policy keeps from the user is listed disabled, saying for whom."""
        infos = await self.client.job_types()
        await self.job_fields.load(self.client)
        self.job_types = {}
        self.type_box.blockSignals(True)
        self.type_box.clear()
        model = self.type_box.model()
        for info in infos:
            self.job_types[info.name] = info
            self.type_box.addItem(info.label or info.name, info.name)
            why = self.access.submit_refusal(info)
            if why and isinstance(model, QStandardItemModel):  # a combo box's own model is one
                item = model.item(self.type_box.count() - 1)
                item.setEnabled(False)
                item.setToolTip(why)
        self.type_box.blockSignals(False)
        allowed = [i for i, info in enumerate(infos) if info.may_submit]
        index = self.type_box.findData(preferred) if preferred else -1
        if index not in allowed:
            index = allowed[0] if allowed else -1
        self.type_box.setCurrentIndex(index)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(allowed))
        if not allowed:
            self.message.setText("The farm's policy lets you submit none of its job types; ask a wrangler or admin.")
            return
        await self.choose_type(self.type_box.currentData())

    def refusal(self, name: str) -> str:
        """Why the user may not submit a job of type `name`, as the Server said when the types were loaded."""
        info = self.job_types.get(name)
        return self.access.submit_refusal(info) if info is not None else ""

    def load_in_background(self, preferred: str | None = None) -> asyncio.Task[None]:
        """`load`, asked again while the Server does not answer and the dialog is open."""
        self._loader = asyncio.ensure_future(self.load_until_answered(preferred))
        return self._loader

    async def load_until_answered(self, preferred: str | None = None) -> None:
        wait = RETRY_FIRST
        while True:
            try:
                await self.load(preferred)
            except ApiError as exc:
                if exc.status_code < 500:  # an answer (a refused token, say): asking again would not change it
                    self.message.setText(f"Could not list the job types: {exc.detail}")
                    return
                what = exc.detail  # a proxy's 502, a Server busy or starting: it may answer soon
            except (httpx.HTTPError, OSError) as exc:
                what = str(exc) or type(exc).__name__
            else:
                if self.message.text().startswith("The farm is not answering"):
                    self.message.setText("")  # what `load` said of the farm's policy stays
                return
            self.message.setText(f"The farm is not answering ({what}). The job types load here as soon as it answers.")
            self._answering.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answering.wait(), wait)
            wait = min(wait * 2, RETRY_MAX)

    def server_answering(self) -> None:
        """The app's link to the Server is back: a load waiting to ask again asks now."""
        self._answering.set()

    def link_state(self, state: str) -> None:
        """Connected to the app's `FarmSync.state_changed`: its event stream open again means the Server answers."""
        if state == ConnectionState.CONNECTED:
            self.server_answering()

    def done(self, result: int) -> None:
        if self._loader is not None:
            self._loader.cancel()  # closed: nobody waits for the job types any more
        super().done(result)

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
        self.form_type = name
        self.description.setText(info.description)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)

    def _template_named(self, name: str) -> None:
        if name and not self.name.text().strip():
            self.name.setText(name)

    def submission(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The body to send, or None and the errors found before sending."""
        assert self.form is not None
        if why := self.refusal(self.type_box.currentData() or ""):  # listed disabled, yet chosen by code
            self.message.setText(why)
            return None, {"type": why}
        settings, errors = self.form.settings()
        job_values, job_errors = self.job_fields.values()
        common: dict[str, str] = {}
        if not self.name.text().strip():
            common["name"] = "is required"
        for key, label in self.common_errors.items():
            label.show_error(common.get(key))
        errors = {**{f"settings.{k}": v for k, v in errors.items()}, **job_errors, **common}
        if errors:
            self.message.setText("Please correct the fields marked in red.")
            return None, errors
        body = {
            "name": self.name.text().strip(),
            "type": self.type_box.currentData(),
            "settings": settings,
            "priority": self.priority.value(),
            **job_values,
        }
        return body, {}

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
            job = await self.client.submit_job(body, self.key_for(body))
        except ApiError as exc:
            self.show_server_errors(exc)
            return None
        except (httpx.HTTPError, OSError) as exc:
            self.message.setText(
                f"The Server did not answer ({str(exc) or type(exc).__name__}). Submit again to retry: "
                "the job will not be made twice."
            )
            return None
        self.message.setText("")
        self.submitted.emit(job)
        self.accept()
        return job

    def key_for(self, body: dict[str, Any]) -> str:
        """The same key for the same body: a second click after a lost answer gets the job the first one made
        (the Server keeps the key, resubmit.py); any change to the form is a new job."""
        return self._keys.key_for(json.dumps(body, sort_keys=True))

    def show_server_errors(self, exc: ApiError) -> None:
        """Each field error next to its field, nested settings included (`settings.caches.0.target`)."""
        assert self.form is not None
        settings_errors: dict[str, str] = {}
        others: dict[str, str] = {}
        for e in exc.errors:
            if e.field.startswith("settings."):
                settings_errors[e.field.removeprefix("settings.")] = e.message
            elif e.field in self.common_errors:
                self.common_errors[e.field].show_error(e.message)
            else:
                others[e.field] = e.message
        unplaced = self.form.show_errors(settings_errors)
        unplaced += self.job_fields.show_errors(others)
        self.message.setText("\n".join([f"The Server refused the job: {exc.detail}", *unplaced]))

"""The `openjd` job type's form: a template file, and a parameter form built from its parameter definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.openjd_params import parameter_specs, read_template
from app.qt import QLabel, QVBoxLayout, QWidget, Signal
from app.schema import FieldSpec
from app.ui.schema_form import SchemaForm
from services.protocol.openjd_template import TemplateTextError

_TEMPLATE = FieldSpec(
    name="template",
    title="Job template",
    kind="path",
    required=True,
    description="An Open Job Description job template file (YAML or JSON, specification 2023-09)",
)


class OpenJDForm(SchemaForm):
    """`settings()` gives {template, parameters}; errors land on "template" or under the parameter form."""

    template_loaded = Signal(str)  # the template's name, for the job name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__([_TEMPLATE], parent)
        self.template: dict[str, Any] | None = None
        self.params: SchemaForm | None = None
        self.params_title = QLabel("Parameters", self)
        self.params_title.hide()
        self.holder = QVBoxLayout()
        layout = self.layout()
        assert layout is not None
        layout.addWidget(self.params_title)
        holder_widget = QWidget(self)
        holder_widget.setLayout(self.holder)
        layout.addWidget(holder_widget)
        self.editors["parameters"] = holder_widget
        self.errors["parameters"] = self.errors["template"]  # the Server's value errors name the parameter
        self.path_edit.line.editingFinished.connect(self.load)

    @property
    def path_edit(self) -> Any:
        return self.editors["template"]

    def set_value(self, name: str, value: Any) -> None:
        super().set_value(name, value)
        if name == "template":
            self.load()

    def load(self) -> bool:
        """Read the template file and rebuild the parameter form; False (with the reason shown) if it fails."""
        text = self.path_edit.line.text().strip()
        if self.params is not None:
            self.holder.removeWidget(self.params)
            self.params.deleteLater()
            self.params = None
        self.template = None
        self.params_title.hide()
        if not text:
            return False
        try:
            self.template = read_template(Path(text).expanduser())
        except TemplateTextError as exc:
            self.errors["template"].show_error(str(exc))
            return False
        self.errors["template"].show_error(None)
        specs = parameter_specs(self.template)
        self.params = SchemaForm(specs, self)
        self.params.setObjectName("openjd-parameters")
        self.holder.addWidget(self.params)
        self.params_title.setVisible(bool(specs))
        self.template_loaded.emit(str(self.template.get("name") or ""))
        return True

    def settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        if self.template is None and not self.load():
            message = self.errors["template"].text() or "is required"
            self.errors["template"].show_error(message)
            return {}, {"template": message}
        assert self.template is not None and self.params is not None
        values, errors = self.params.settings()
        if errors:
            return {}, {f"parameters.{k}": v for k, v in errors.items()}
        parameters = {k: v if isinstance(v, str) else repr(v) for k, v in values.items()}
        return {"template": self.template, "parameters": parameters}, {}

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """A named parameter's error under its field; the template's and openjd-model's own under the template."""
        named = {k.removeprefix("parameters."): v for k, v in errors.items() if k.startswith("parameters.")}
        here = [errors[k] for k in ("template", "parameters") if k in errors]
        if self.params is not None:
            here += self.params.show_errors(named)
        else:
            here += [f"{k}: {v}" for k, v in named.items()]
        self.errors["template"].show_error("; ".join(here) or None)
        return [f"{k}: {v}" for k, v in errors.items() if k.split(".")[0] not in ("template", "parameters")]

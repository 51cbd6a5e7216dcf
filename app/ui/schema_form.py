"""A form generated from a job type's settings schema, with an error line under each field.

Scalars get line edits, spin boxes (within the schema's bounds), check boxes and choices; lists of words a
line edit, mappings NAME=value lines, nested objects and lists of objects their own forms
(`schema_nested.py`), and any other shape a JSON text field. Errors are keyed by dotted path.
"""

from __future__ import annotations

import json
from typing import Any

from app.qt import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    as_html,
    plain_label,
)
from app.schema import FieldSpec
from app.schema_values import as_raw, build_settings, initial_text
from app.ui.schema_nested import ObjectBox, ObjectList

ERROR_STYLE = "color: #d63a3a;"
INT_LIMIT = 2_000_000_000


class ErrorLabel(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plain_label(self)  # the Server's refusal may quote what was typed
        self.setStyleSheet(ERROR_STYLE)
        self.setWordWrap(True)
        self.hide()

    def show_error(self, message: str | None) -> None:
        self.setText(message or "")
        self.setVisible(bool(message))


class PathEdit(QWidget):
    """A line edit with a browse button opening the file dialog the schema asks for."""

    def __init__(self, mode: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode
        self.line = QLineEdit(self)
        button = QPushButton("Browse…", self)
        button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line, 1)
        layout.addWidget(button)

    def browse(self) -> None:
        if self.mode == "directory":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", self.line.text())
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, "Choose where to write", self.line.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", self.line.text())
        if path:
            self.line.setText(path)


class JsonEdit(QPlainTextEdit):
    """A value the form cannot model field by field, written as JSON."""


def _make_form(specs: list[FieldSpec], parent: QWidget) -> QWidget:
    return SchemaForm(specs, parent)


class SchemaForm(QWidget):
    def __init__(self, specs: list[FieldSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = specs
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, ErrorLabel] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for spec in specs:
            editor = self._editor(spec)
            editor.setObjectName(f"setting-{spec.name}")
            if spec.description:
                editor.setToolTip(as_html(spec.description))
            error = ErrorLabel(self)
            error.setObjectName(f"error-{spec.name}")
            cell = QWidget(self)
            box = QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(2)
            box.addWidget(editor)
            box.addWidget(error)
            label = spec.title + (" *" if spec.required else "")
            if isinstance(editor, QGroupBox):  # a box carries its own title
                form.addRow(cell)
            else:
                form.addRow(label, cell)
            self.editors[spec.name] = editor
            self.errors[spec.name] = error

    def _editor(self, spec: FieldSpec) -> QWidget:
        if spec.kind == "object":
            return ObjectBox(spec, _make_form, self)
        if spec.kind == "objects":
            return ObjectList(spec, _make_form, self)
        initial = initial_text(spec)
        if spec.kind == "json":
            json_edit = JsonEdit(self)
            json_edit.setPlaceholderText("JSON")
            json_edit.setPlainText(str(initial))
            json_edit.setFixedHeight(80)
            return json_edit
        if spec.kind == "bool":
            check = QCheckBox(self)
            check.setChecked(bool(initial))
            return check
        if spec.kind == "enum":
            combo = QComboBox(self)
            if spec.nullable or (not spec.required and spec.default is None):
                combo.addItem("")
            combo.addItems(spec.choices)
            combo.setCurrentText(str(initial))
            return combo
        if spec.kind == "int" and initial != "":
            low, high = _int_bounds(spec)
            if -INT_LIMIT <= low <= int(initial) <= high <= INT_LIMIT:  # else a line edit: QSpinBox is 32-bit
                spin = QSpinBox(self)
                spin.setRange(low, high)
                spin.setValue(int(initial))
                return spin
        if spec.kind == "float" and initial != "":
            dspin = QDoubleSpinBox(self)
            dspin.setDecimals(4)
            # an exclusive bound is kept by the check before sending; the spin box stops at the bound itself
            bottom = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
            top = spec.maximum if spec.maximum is not None else spec.exclusive_maximum
            dspin.setRange(bottom if bottom is not None else -1e9, top if top is not None else 1e9)
            dspin.setValue(float(initial))
            return dspin
        if spec.kind == "dict":
            text = QPlainTextEdit(self)
            text.setPlaceholderText("NAME=value, one a line")
            text.setPlainText(str(initial))
            text.setFixedHeight(60)
            return text
        if spec.kind == "path":
            path = PathEdit(spec.path_mode, self)
            path.line.setText(str(initial))
            path.line.setPlaceholderText(spec.example)
            return path
        line = QLineEdit(self)
        line.setText(str(initial))
        line.setPlaceholderText(spec.example)
        return line

    def raw_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, w in self.editors.items():
            if isinstance(w, ObjectBox | ObjectList):
                out[name] = w.raw()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                out[name] = w.value()
            elif isinstance(w, QPlainTextEdit):
                out[name] = w.toPlainText()
            elif isinstance(w, PathEdit):
                out[name] = w.line.text()
            elif isinstance(w, QLineEdit):
                out[name] = w.text()
        return out

    def set_value(self, name: str, value: Any) -> None:
        """Fill a field as the user would, in the form's terms: text for words and NAME=value lines, a dict
        for an object, a list of dicts for a list of objects (tests and the screenshot script use this)."""
        w = self.editors[name]
        if isinstance(w, ObjectBox | ObjectList):
            w.set_value(value)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, JsonEdit) and not isinstance(value, str):
            w.setPlainText(json.dumps(value, indent=1))
        elif isinstance(w, QPlainTextEdit):
            w.setPlainText(str(value))
        elif isinstance(w, PathEdit):
            w.line.setText(str(value))
        elif isinstance(w, QLineEdit):
            w.setText(str(value))

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in self.editors:
                self.set_value(name, value)

    def fill(self, settings: dict[str, Any]) -> None:
        """Show a job's settings (e.g. a job being cloned); settings the form has no field for are ignored."""
        for spec in self.specs:
            if spec.name in settings:
                self.set_value(spec.name, as_raw(spec, settings[spec.name]))

    def settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        settings, errors = build_settings(self.specs, self.raw_values())
        self.show_errors(errors)
        return settings, errors

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Each error under its field (`a.0.b` under field b of item 0 of a); returns the ones with no field."""
        placed: set[str] = set()
        for name, label in self.errors.items():
            own = [errors[name]] if name in errors else []
            nested = {k[len(name) + 1 :]: v for k, v in errors.items() if k.startswith(f"{name}.")}
            placed.update(k for k in errors if k == name or k.startswith(f"{name}."))
            editor = self.editors.get(name)
            if isinstance(editor, ObjectBox | ObjectList):
                own += editor.show_errors(nested)
            else:
                own += [f"{k}: {v}" for k, v in nested.items()]
            label.show_error("; ".join(own) or None)
        return [f"{k}: {v}" for k, v in errors.items() if k not in placed]


def _int_bounds(spec: FieldSpec) -> tuple[int, int]:
    low = spec.minimum if spec.minimum is not None else None
    if low is None and spec.exclusive_minimum is not None:
        low = spec.exclusive_minimum + 1
    high = spec.maximum if spec.maximum is not None else None
    if high is None and spec.exclusive_maximum is not None:
        high = spec.exclusive_maximum - 1
    return int(low if low is not None else -INT_LIMIT), int(high if high is not None else INT_LIMIT)

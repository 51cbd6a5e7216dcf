"""A form generated from a job type's settings schema, with an error line under each field."""

from __future__ import annotations

from typing import Any

from app.qt import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from app.schema import FieldSpec, build_settings, initial_text

ERROR_STYLE = "color: #d63a3a;"
INT_LIMIT = 2_000_000_000


class ErrorLabel(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
                editor.setToolTip(spec.description)
            error = ErrorLabel(self)
            error.setObjectName(f"error-{spec.name}")
            cell = QWidget(self)
            box = QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(2)
            box.addWidget(editor)
            box.addWidget(error)
            form.addRow(spec.title + (" *" if spec.required else ""), cell)
            self.editors[spec.name] = editor
            self.errors[spec.name] = error

    def _editor(self, spec: FieldSpec) -> QWidget:
        initial = initial_text(spec)
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
            spin = QSpinBox(self)
            spin.setRange(int(spec.minimum if spec.minimum is not None else -INT_LIMIT), INT_LIMIT)
            if spec.maximum is not None:
                spin.setMaximum(int(spec.maximum))
            spin.setValue(int(initial))
            return spin
        if spec.kind == "float" and initial != "":
            dspin = QDoubleSpinBox(self)
            dspin.setDecimals(3)
            low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
            dspin.setRange(low if low is not None else -1e9, spec.maximum if spec.maximum is not None else 1e9)
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
            if isinstance(w, QCheckBox):
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
        """Fill a field as the user would (tests and the screenshot script use this)."""
        w = self.editors[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QPlainTextEdit):
            w.setPlainText(str(value))
        elif isinstance(w, PathEdit):
            w.line.setText(str(value))
        elif isinstance(w, QLineEdit):
            w.setText(str(value))

    def settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        settings, errors = build_settings(self.specs, self.raw_values())
        self.show_errors(errors)
        return settings, errors

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, label in self.errors.items():
            label.show_error(errors.get(name))

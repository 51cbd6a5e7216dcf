"""Editors for nested settings: an object's own form in a box, and a list of objects with Add and Remove.

Each row of a list is a form of the item's fields; errors the Server gives for `caches.1.modifier` land under
that row's field. The forms are made by a factory the caller passes, so this module needs no SchemaForm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from app.qt import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from app.schema import FieldSpec


class NestedForm(Protocol):
    """What a nested editor needs of the form it holds (SchemaForm provides it)."""

    def raw_values(self) -> dict[str, Any]: ...
    def set_values(self, values: dict[str, Any]) -> None: ...
    def show_errors(self, errors: dict[str, str]) -> list[str]: ...


FormFactory = Callable[[list[FieldSpec], QWidget], QWidget]


class ObjectBox(QGroupBox):
    """An object's fields in a titled box; an optional object can be switched off (then it is left out)."""

    def __init__(self, spec: FieldSpec, make_form: FormFactory, parent: QWidget | None = None) -> None:
        super().__init__(spec.title, parent)
        self.spec = spec
        self.form = make_form(spec.fields, self)
        if not spec.required:
            self.setCheckable(True)
            self.setChecked(spec.default is not None)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)

    def _inner(self) -> NestedForm:
        form: NestedForm = self.form  # type: ignore[assignment]
        return form

    def raw(self) -> dict[str, Any] | None:
        if self.isCheckable() and not self.isChecked():
            return None
        return self._inner().raw_values()

    def set_value(self, value: dict[str, Any] | None) -> None:
        if self.isCheckable():
            self.setChecked(value is not None)
        if value is not None:
            self._inner().set_values(value)

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        return self._inner().show_errors(errors)


class ObjectList(QWidget):
    """A list of objects: one form per item, each with a Remove button, and an Add button below."""

    def __init__(self, spec: FieldSpec, make_form: FormFactory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.make_form = make_form
        self.rows: list[QGroupBox] = []
        self.forms: list[QWidget] = []
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.add_button = QPushButton(f"Add {spec.item_title.lower() or 'item'}", self)
        self.add_button.setObjectName(f"add-{spec.name}")
        self.add_button.clicked.connect(self.add_item)
        self.empty = QLabel("None yet.", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.rows_layout)
        layout.addWidget(self.empty)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        for _ in range(spec.min_items or 0):
            self.add_item()
        self._refresh()

    def add_item(self) -> QWidget:
        row = QGroupBox(self)
        form = self.make_form(self.spec.fields, row)
        remove = QPushButton("Remove", row)
        remove.setObjectName("remove-item")
        remove.clicked.connect(lambda: self.remove_item(self.rows.index(row)))
        box = QVBoxLayout(row)
        box.addWidget(form)
        box.addWidget(remove)
        self.rows.append(row)
        self.forms.append(form)
        self.rows_layout.addWidget(row)
        self._refresh()
        return form

    def remove_item(self, index: int) -> None:
        row = self.rows.pop(index)
        self.forms.pop(index)
        self.rows_layout.removeWidget(row)
        row.deleteLater()
        self._refresh()

    def _refresh(self) -> None:
        for n, row in enumerate(self.rows, start=1):
            row.setTitle(f"{self.spec.item_title} {n}")
        self.empty.setVisible(not self.rows)
        full = self.spec.max_items is not None and len(self.rows) >= self.spec.max_items
        self.add_button.setEnabled(not full)

    def _form(self, index: int) -> NestedForm:
        form: NestedForm = self.forms[index]  # type: ignore[assignment]
        return form

    def raw(self) -> list[dict[str, Any]]:
        return [self._form(i).raw_values() for i in range(len(self.forms))]

    def set_value(self, items: list[dict[str, Any]]) -> None:
        while self.rows:
            self.remove_item(len(self.rows) - 1)
        for item in items:
            self.add_item()
            self._form(len(self.forms) - 1).set_values(item)

    def show_errors(self, errors: dict[str, str]) -> list[str]:
        """Errors by `index.field` go to that row; the rest are returned for the list's own line."""
        per_row: dict[int, dict[str, str]] = {}
        left: list[str] = []
        for path, message in errors.items():
            head, _, rest = path.partition(".")
            if head.isdigit() and int(head) < len(self.forms) and rest:
                per_row.setdefault(int(head), {})[rest] = message
            else:
                left.append(f"{self.spec.item_title} {int(head) + 1}: {message}" if head.isdigit() else message)
        for i in range(len(self.forms)):
            left += [f"{self.spec.item_title} {i + 1}: {m}" for m in self._form(i).show_errors(per_row.get(i, {}))]
        return left

"""Table views shared by the panels: the progress-bar delegate and a sortable, filterable view."""

from __future__ import annotations

from app.models.farm_models import RecordFilterProxy
from app.models.table import KeyRole, ProgressRole, RecordTableModel
from app.qt import (
    QAbstractItemView,
    QApplication,
    QModelIndex,
    QPainter,
    QPersistentModelIndex,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    Qt,
    QTableView,
    QWidget,
)


class ProgressDelegate(QStyledItemDelegate):
    """Draws ProgressRole as a progress bar with the cell's text on it."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        value = index.data(ProgressRole)
        if value is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = int(float(value) * 1000)
        bar.text = str(index.data() or "")
        bar.textVisible = True
        bar.state = option.state
        style = QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


def make_view(model: RecordTableModel, parent: QWidget | None = None) -> tuple[QTableView, RecordFilterProxy]:
    proxy = RecordFilterProxy(parent)
    proxy.setSourceModel(model)
    view = QTableView(parent)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setStretchLastSection(True)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    for col, c in enumerate(model.columns):
        if c.progress is not None:
            view.setItemDelegateForColumn(col, ProgressDelegate(view))
    return view, proxy


def make_big_view(model: RecordTableModel, parent: QWidget | None = None) -> QTableView:
    """A view straight on the model, for tables of 100,000 rows: the model sorts itself (see its `sort`)."""
    view, proxy = make_view(model, parent)
    view.setModel(model)
    proxy.deleteLater()
    return view


def selected_keys(view: QTableView) -> list[object]:
    """Record keys of the selected rows, in view order."""
    sel = view.selectionModel()
    rows = sorted(sel.selectedRows(), key=lambda i: i.row())
    return [i.data(KeyRole) for i in rows]

"""Table views shared by the panels: the progress-bar delegate and a sortable, filterable view."""

from __future__ import annotations

from app.models.farm_models import RecordFilterProxy
from app.models.table import KeyRole, ProgressRole, RecordTableModel
from app.qt import (
    QAbstractItemView,
    QApplication,
    QItemSelectionModel,
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
    # The column headers ask, to draw each section, whether its whole column is selected: Qt answers by making a
    # model index per row (1,000,000 Python calls, seconds of a frozen window, after selecting all 100,000 tasks).
    # With a selection model of their own, never selected, they do not ask the view's; clicking one still sorts.
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setSelectionModel(QItemSelectionModel(model, header))
    return view


def selected_keys(view: QTableView) -> list[object]:
    """Record keys of the selected rows, in view order.

    Read from the selection's ranges: a select-all of 100,000 rows is one range, a slice of the model's keys,
    where `selectedRows()` made an index per row (and `data()` a call per row): seconds of a frozen window."""
    selection = view.selectionModel().selection()
    ranges = sorted((r.top(), r.bottom()) for r in (selection.at(i) for i in range(selection.count())))
    model = view.model()
    keys: list[object] = []
    if isinstance(model, RecordTableModel):  # a big view, straight on the model
        for top, bottom in ranges:
            keys.extend(model.keys_between(top, bottom))
    else:  # a view through a filter proxy: its tables are small
        for top, bottom in ranges:
            keys.extend(model.index(row, 0).data(KeyRole) for row in range(top, bottom + 1))
    # ranges of one row can overlap (the same rows in several columns): each key once, in order
    return list(dict.fromkeys(keys)) if len(ranges) > 1 else keys

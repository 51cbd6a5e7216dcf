"""A table model over a `Collection` whose changes are coalesced: at most one flush of rows per frame."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from app.models.collection import Collection
from app.qt import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal

FRAME_MS = 16  # one repaint per 60 Hz frame at most
# Up to this many separate changed ranges are sent one by one: a sorting or filtering proxy then looks at
# the changed rows only. Past it, one span is cheaper to send than the ranges.
MAX_RANGES = 512

KeyRole = Qt.ItemDataRole.UserRole + 1  # the record's key (job id, worker id, ...)
SortRole = Qt.ItemDataRole.UserRole + 2  # a raw value that sorts right (numbers, ISO times)
ProgressRole = Qt.ItemDataRole.UserRole + 3  # 0.0-1.0 for the progress bar delegate
StatusRole = Qt.ItemDataRole.UserRole + 4  # the status string, for filters

AnyIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column:
    title: str
    display: Callable[[Any], Any]
    sort: Callable[[Any], Any] | None = None
    foreground: Callable[[Any], Any] | None = None
    progress: Callable[[Any], float] | None = None
    align_right: bool = False


def contiguous_ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted rows → inclusive (first, last) runs: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for r in sorted(rows):
        if out and r == out[-1][1] + 1:
            out[-1] = (out[-1][0], r)
        else:
            out.append((r, r))
    return out


class RecordTableModel(QAbstractTableModel):
    """Rows are the collection's keys in arrival order; the data is read from the collection on demand.

    Changes arrive from the collection one by one and are kept as pending sets; a single-shot timer flushes
    them as at most a few begin/end row operations and dataChanged ranges per frame.
    """

    flushed = Signal()

    def __init__(
        self,
        collection: Collection[Any, Any],
        columns: list[Column],
        status_of: Callable[[Any], str] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.collection = collection
        self.columns = columns
        self._status_of = status_of
        self._keys: list[Hashable] = list(collection.items)
        self._row: dict[Hashable, int] = {k: i for i, k in enumerate(self._keys)}
        self._added: dict[Hashable, None] = {}  # ordered set
        self._changed: set[Hashable] = set()
        self._removed: set[Hashable] = set()
        self._reset = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self.flush)
        collection.subscribe(self)

    # --- collection listener ---------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def collection_reset(self) -> None:
        self._reset = True
        self._added.clear()
        self._changed.clear()
        self._removed.clear()
        self._schedule()

    def record_added(self, key: Hashable) -> None:
        if self._reset:
            return
        if key in self._removed:  # removed and back within one frame: the row stays, its data changed
            self._removed.discard(key)
            self._changed.add(key)
        elif key not in self._row:
            self._added[key] = None
        self._schedule()

    def record_changed(self, key: Hashable) -> None:
        if self._reset or key in self._added:
            return
        self._changed.add(key)
        self._schedule()

    def record_removed(self, key: Hashable) -> None:
        if self._reset:
            return
        if key in self._added:
            del self._added[key]
        elif key in self._row:
            self._removed.add(key)
            self._changed.discard(key)
        self._schedule()

    def has_pending(self) -> bool:
        return bool(self._reset or self._added or self._changed or self._removed)

    # --- the flush -------------------------------------------------------------------------------
    def flush(self) -> None:
        self._timer.stop()
        if not self.has_pending():
            return
        if self._reset:
            self.beginResetModel()
            self._keys = list(self.collection.items)
            self._row = {k: i for i, k in enumerate(self._keys)}
            self._reset = False
            self.endResetModel()
        if self._removed:
            rows = [self._row[k] for k in self._removed]
            self._removed.clear()
            for first, last in reversed(contiguous_ranges(rows)):
                self.beginRemoveRows(QModelIndex(), first, last)
                del self._keys[first : last + 1]
                self.endRemoveRows()
            self._row = {k: i for i, k in enumerate(self._keys)}
        if self._added:
            new = list(self._added)
            self._added.clear()
            first = len(self._keys)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for i, k in enumerate(new, start=first):
                self._keys.append(k)
                self._row[k] = i
            self.endInsertRows()
        if self._changed:
            rows = [self._row[k] for k in self._changed if k in self._row]
            self._changed.clear()
            ranges = contiguous_ranges(rows)
            if len(ranges) > MAX_RANGES:
                ranges = [(ranges[0][0], ranges[-1][1])]
            last_col = len(self.columns) - 1
            for first, last in ranges:
                self.dataChanged.emit(self.index(first, 0), self.index(last, last_col))
        self.flushed.emit()

    # --- the Qt model ----------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows in Python (100,000 rows in well under a second, where a QSortFilterProxyModel
        calling back into Python for every comparison takes many seconds). Rows that arrive later are
        appended at the end until the next sort."""
        if not 0 <= column < len(self.columns):
            return
        self.flush()
        col = self.columns[column]
        value = col.sort or col.display
        items = self.collection.items

        def key(k: Hashable) -> tuple[bool, Any]:
            v = value(items[k])
            return (v is None, v)

        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        anchors = [(self._keys[i.row()], i.column()) for i in old]
        try:
            self._keys.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
        except TypeError:  # values of mixed kinds: order by their text
            self._keys.sort(key=lambda k: str(value(items[k])), reverse=order == Qt.SortOrder.DescendingOrder)
        self._row = {k: i for i, k in enumerate(self._keys)}
        self.changePersistentIndexList(old, [self.index(self._row[k], c) for k, c in anchors])
        self.layoutChanged.emit()

    def key_at(self, row: int) -> Hashable:
        return self._keys[row]

    def keys_between(self, first: int, last: int) -> list[Hashable]:
        """The keys of rows `first` to `last`, both included: one slice, for a selection of many rows."""
        return self._keys[first : last + 1]

    def row_of(self, key: Hashable) -> int | None:
        return self._row.get(key)

    def record_at(self, row: int) -> Any:
        return self.collection.items.get(self._keys[row])

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._keys):
            return None
        record = self.collection.items.get(self._keys[index.row()])
        if record is None:  # removed from the collection; the row goes at the next flush
            return None
        col = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.display(record)
        if role == SortRole:
            return (col.sort or col.display)(record)
        if role == KeyRole:
            return self._keys[index.row()]
        if role == StatusRole:
            return self._status_of(record) if self._status_of else None
        if role == ProgressRole and col.progress is not None:
            return col.progress(record)
        if role == Qt.ItemDataRole.ForegroundRole and col.foreground is not None:
            return col.foreground(record)
        if role == Qt.ItemDataRole.TextAlignmentRole and col.align_right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.columns)
        ):
            return self.columns[section].title
        return None

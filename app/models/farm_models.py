"""The four live table models of the main window, and the proxy that sorts and filters them."""

from __future__ import annotations

from app.models import columns as cols
from app.models.store import ClientStore
from app.models.table import RecordTableModel, SortRole, StatusRole, contiguous_ranges
from app.qt import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimer
from services.protocol.states import FINISHED_JOB_STATUSES


class JobsModel(RecordTableModel):
    TICK_MS = 1000

    def __init__(self, store: ClientStore, parent: QObject | None = None) -> None:
        super().__init__(store.jobs, cols.job_columns(store), cols.job_status, parent)
        self.store = store
        titles = [c.title for c in self.columns]
        self._time_columns = (titles.index(cols.TIME_COLUMNS[0]), titles.index(cols.TIME_COLUMNS[-1]))
        self._clock = QTimer(self)
        self._clock.setInterval(self.TICK_MS)
        self._clock.timeout.connect(self.tick)
        self._clock.start()

    def tick(self) -> None:
        """The elapsed time and the ETA of started, unfinished jobs move with the clock: repaint those cells
        (only those: a sorting, filtering proxy looks again at every row it is told of)."""
        rows = [
            row
            for key, job in self.store.jobs.items.items()
            if job.started is not None
            and job.status not in FINISHED_JOB_STATUSES
            and (row := self.row_of(key)) is not None
        ]
        first, last = self._time_columns
        for top, bottom in contiguous_ranges(rows):
            self.dataChanged.emit(self.index(top, first), self.index(bottom, last), [Qt.ItemDataRole.DisplayRole])


class TasksModel(RecordTableModel):
    def __init__(self, store: ClientStore, parent: QObject | None = None) -> None:
        super().__init__(store.tasks, cols.task_columns(), cols.task_status, parent)


class WorkersModel(RecordTableModel):
    def __init__(self, store: ClientStore, parent: QObject | None = None) -> None:
        super().__init__(store.workers, cols.worker_columns(store), cols.worker_status, parent)


class ManagersModel(RecordTableModel):
    def __init__(self, store: ClientStore, parent: QObject | None = None) -> None:
        super().__init__(store.managers, cols.manager_columns(), cols.manager_status, parent)


class RecordFilterProxy(QSortFilterProxyModel):
    """Sorts by the raw SortRole values; filters by free text (any shown column) and a set of statuses."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self._statuses: frozenset[str] | None = None
        self._text = ""

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().lower()
        self.endFilterChange()

    def set_statuses(self, statuses: frozenset[str] | None) -> None:
        """Only rows with one of these statuses; None shows every status."""
        self.beginFilterChange()
        self._statuses = statuses
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if self._statuses is not None:
            status = model.data(model.index(source_row, 0, source_parent), StatusRole)
            if status not in self._statuses:
                return False
        if self._text:
            for c in range(model.columnCount(source_parent)):
                value = model.data(model.index(source_row, c, source_parent))
                if value is not None and self._text in str(value).lower():
                    return True
            return False
        return True

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        a = left.data(SortRole)
        b = right.data(SortRole)
        try:
            return bool(a < b)
        except TypeError:  # None against a value, or mixed kinds: order by text
            return str(a) < str(b)

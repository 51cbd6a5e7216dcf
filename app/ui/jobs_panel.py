"""The jobs tab: the jobs table with search and status filter, and the selected job's tasks and log."""

from __future__ import annotations

from collections.abc import Callable

from app.models.access import UserAccess
from app.models.farm_models import JobsModel, TasksModel
from app.models.previews import PreviewSource
from app.models.sync import FarmSync
from app.models.table import Column, KeyRole
from app.qt import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPoint,
    QSplitter,
    Qt,
    QTabWidget,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from app.ui.actions import Confirm, JobActions, TaskActions
from app.ui.job_details import JobDetails
from app.ui.job_failures import JobFailuresPanel
from app.ui.preview_view import PreviewView
from app.ui.tables import make_big_view, make_view, selected_keys

STATUS_FILTERS: list[tuple[str, frozenset[str] | None]] = [
    ("All statuses", None),
    ("Unfinished", frozenset({"under-construction", "queued", "active", "pause-requested", "requeueing"})),
    ("Active", frozenset({"active"})),
    ("Queued", frozenset({"queued", "requeueing"})),
    ("Paused", frozenset({"paused", "pause-requested"})),
    ("Failed", frozenset({"failed"})),
    ("Completed", frozenset({"completed"})),
    ("Canceled", frozenset({"canceled", "cancel-requested"})),
]


class JobsPanel(QWidget):
    task_log_requested = Signal(int)  # task id

    def __init__(
        self,
        sync: FarmSync,
        confirm: Confirm | None = None,
        parent: QWidget | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(parent)
        self.sync = sync
        self.access = access or UserAccess(self)
        store = sync.store
        self.jobs_model = JobsModel(store, self)
        self.tasks_model = TasksModel(store, self)
        self.jobs_view, self.jobs_proxy = make_view(self.jobs_model, self)
        self.jobs_view.setObjectName("jobs-table")
        self.tasks_view = make_big_view(self.tasks_model, self)
        self.tasks_view.setObjectName("tasks-table")
        self.jobs_view.sortByColumn(6, Qt.SortOrder.DescendingOrder)  # newest first
        self.tasks_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.jobs_view.setColumnWidth(0, 220)
        self.jobs_view.setColumnWidth(2, 120)
        for col in (6, 7):  # created, updated
            self.jobs_view.setColumnWidth(col, 150)
        self.tasks_view.setColumnWidth(9, 150)
        # the time columns come last in the models (the others keep their numbers) but show next to the progress
        _show_after(self.jobs_view.horizontalHeader(), self.jobs_model.columns, "Progress", ("Elapsed", "ETA"))
        _show_after(self.tasks_view.horizontalHeader(), self.tasks_model.columns, "Worker", ("Started", "Render time"))

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search jobs (name, type, submitter, activity…)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.jobs_proxy.set_text)
        self.status_filter = QComboBox(self)
        for label, statuses in STATUS_FILTERS:
            self.status_filter.addItem(label, statuses)
        self.status_filter.currentIndexChanged.connect(
            lambda i: self.jobs_proxy.set_statuses(self.status_filter.itemData(i))
        )

        self.job_actions = JobActions(sync, self.selected_job_ids, self, confirm=confirm, access=self.access)
        self.task_actions = TaskActions(sync, self.selected_task_ids, self, confirm=confirm, access=self.access)
        for a in self.job_actions.all:
            self.addAction(a)
        self.job_actions.update_enabled()

        self.job_log = QPlainTextEdit(self)
        self.job_log.setReadOnly(True)
        self.job_log.setObjectName("job-log")
        store.job_log_listeners.append(self._show_job_log)

        self.jobs_view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.tasks_view.selectionModel().selectionChanged.connect(self.task_actions.update_enabled)
        self.jobs_view.customContextMenuRequested.connect(self._jobs_menu_at)
        self.tasks_view.customContextMenuRequested.connect(self._tasks_menu_at)
        self.tasks_view.doubleClicked.connect(lambda _i: self._open_task_log())

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.status_filter)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.jobs_view)
        self.detail_tabs = QTabWidget(self)
        self.detail_tabs.addTab(self.tasks_view, "Tasks")
        store.tasks_cut_listeners.append(self._show_tasks_cut)
        self.detail_tabs.addTab(self.job_log, "Job log")
        self.preview = PreviewView(PreviewSource(sync, "jobs", self), self)  # the job's last-rendered frame
        self.preview.setObjectName("job-preview")
        details = QSplitter(Qt.Orientation.Horizontal, self)
        details.addWidget(self.detail_tabs)
        details.addWidget(self.preview)
        details.setSizes([700, 300])
        self.failures = JobFailuresPanel(
            sync, self, confirm=confirm, access=self.access
        )  # blocklist, dependencies that failed
        self.detail_tabs.addTab(self.failures, "Failures")
        self.details = JobDetails(sync, self, confirm=confirm, access=self.access)
        # The context object cancels the timer when the panel goes first (a test or the app closing within 200 ms).
        self.details.submitted.connect(lambda job: QTimer.singleShot(200, self, lambda: self.select_job(job.id)))
        self.detail_tabs.addTab(self.details, "Details")
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(top)
        split.addWidget(details)
        split.setSizes([400, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def selected_job_ids(self) -> list[int]:
        return [int(k) for k in selected_keys(self.jobs_view) if k is not None]  # type: ignore[call-overload]

    def selected_task_ids(self) -> list[int]:
        return [int(k) for k in selected_keys(self.tasks_view) if k is not None]  # type: ignore[call-overload]

    def select_job(self, job_id: int) -> None:
        self.jobs_model.flush()
        row = self.jobs_model.row_of(job_id)
        if row is None:
            return
        index = self.jobs_proxy.mapFromSource(self.jobs_model.index(row, 0))
        self.jobs_view.selectRow(index.row())

    def _selection_changed(self) -> None:
        ids = self.selected_job_ids()
        self.job_actions.update_enabled()
        self.task_actions.update_enabled()
        # the detail shows the current (last clicked) job; with several selected, the first
        current = self.jobs_view.currentIndex()
        job_id = current.data(KeyRole) if current.isValid() else None
        if job_id not in ids:
            job_id = ids[0] if ids else None
        self.sync.select_job(job_id)
        self.preview.source.show(job_id)
        self.details.show_job(job_id)

    def _show_job_log(self) -> None:
        lines = [
            f"{e.time.astimezone().strftime('%Y-%m-%d %H:%M:%S')}  {e.user:<12} {e.message}"
            for e in self.sync.store.job_log
        ]
        self.job_log.setPlainText("\n".join(lines))
        self._show_tasks_cut()  # the job changed (its log is read again after each change): its total too

    def jobs_menu(self) -> QMenu:
        menu = QMenu(self)
        for a in self.job_actions.all:
            menu.addAction(a)
            if a is self.job_actions.resume or a is self.job_actions.priority:
                menu.addSeparator()
        return menu

    def _show_tasks_cut(self) -> None:
        """The Tasks tab says when the job has more tasks than the app holds, and which ones it shows."""
        store = self.sync.store
        index = self.detail_tabs.indexOf(self.tasks_view)
        job = store.jobs.get(store.selected_job_id) if store.selected_job_id is not None else None
        if store.tasks_cut is None or job is None:
            self.detail_tabs.setTabText(index, "Tasks")
            self.detail_tabs.setTabToolTip(index, "")
            return
        self.detail_tabs.setTabText(index, f"Tasks (first {store.tasks_cut:,} of {job.tasks_total:,})")
        self.detail_tabs.setTabToolTip(
            index,
            f"The first {store.tasks_cut:,} tasks, and after them those assigned, running or failed, and those that "
            f"change while the job is shown. GET /api/v1/jobs/{job.id}/tasks (`status`, `cursor`) lists every one.",
        )

    def tasks_menu(self) -> QMenu:
        menu = QMenu(self)
        log = menu.addAction("Show the task log")
        log.triggered.connect(self._open_task_log)
        menu.addSeparator()
        menu.addAction(self.task_actions.requeue)
        menu.addAction(self.task_actions.cancel)
        return menu

    def _open_task_log(self) -> None:
        ids = self.selected_task_ids()
        if ids:
            self.task_log_requested.emit(ids[0])

    def _jobs_menu_at(self, pos: QPoint) -> None:
        self._popup(self.jobs_menu, self.jobs_view.viewport().mapToGlobal(pos))

    def _tasks_menu_at(self, pos: QPoint) -> None:
        self._popup(self.tasks_menu, self.tasks_view.viewport().mapToGlobal(pos))

    @staticmethod
    def _popup(make: Callable[[], QMenu], at: QPoint) -> None:
        menu = make()
        menu.popup(at)  # not exec(): a nested event loop would stall the qasync loop's network work


def _show_after(header: QHeaderView, columns: list[Column], after: str, titles: tuple[str, ...]) -> None:
    """Move columns, by title, to show right after another (the view's order only; the model's stays)."""
    index = [c.title for c in columns].index
    for offset, title in enumerate(titles, start=1):
        header.moveSection(header.visualIndex(index(title)), header.visualIndex(index(after)) + offset)

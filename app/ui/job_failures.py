"""The selected job's failures: its blocklist (cleared per entry) and the jobs it waits for (released, or the
job canceled) when one of them failed or was canceled. Reloaded with the job log (on selection and changes)."""

from __future__ import annotations

from app.models.access import UserAccess
from app.models.sync import FarmSync
from app.qt import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
    plain_label,
)
from app.ui.actions import Confirm, confirm_box
from services.protocol.failures import BlocklistEntry, Dependency
from services.protocol.jobs import JobAction
from services.protocol.server_client import ApiError

BLOCKLIST_COLUMNS = ("Worker", "Task type", "Failures", "May run it", "Manager")
DEPENDENCY_COLUMNS = ("Job", "Name", "Status")


def _table(columns: tuple[str, ...], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


CLEAR_TIP = "Those workers may run those tasks of this job again"


class JobFailuresPanel(QWidget):
    done = Signal(str)  # a short line for the status bar
    loaded = Signal()

    def __init__(
        self,
        sync: FarmSync,
        parent: QWidget | None = None,
        confirm: Confirm | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(parent)
        self.sync = sync
        self.access = access or UserAccess(self)
        self.access.changed.connect(self._enable)
        self.confirm = confirm or confirm_box(self)
        self.job_id: int | None = None
        self.entries: list[BlocklistEntry] = []
        self.dependencies: list[Dependency] = []

        self.blocklist = _table(BLOCKLIST_COLUMNS, self)
        self.blocklist.setObjectName("blocklist-table")
        self.blocklist.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.blocklist.itemSelectionChanged.connect(self._enable)
        self.clear_button = QPushButton("Clear selected entries", self)
        self.clear_button.clicked.connect(self.clear_selected)
        self.blocklist_note = plain_label(QLabel(self))
        box = QGroupBox("Blocklist: workers that failed this job's tasks", self)
        col = QVBoxLayout(box)
        col.addWidget(self.blocklist_note)
        col.addWidget(self.blocklist)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.clear_button)
        col.addLayout(row)

        self.deps = _table(DEPENDENCY_COLUMNS, self)
        self.deps.setObjectName("dependencies-table")
        self.deps_note = plain_label(QLabel(self))
        self.deps_note.setObjectName("dependencies-note")
        self.deps_note.setWordWrap(True)
        self.release_button = QPushButton("Release (drop failed and canceled dependencies)", self)
        self.release_button.clicked.connect(self.release)
        self.cancel_button = QPushButton("Cancel this job", self)
        self.cancel_button.clicked.connect(self.cancel_job)
        dep_box = QGroupBox("Waits for", self)
        dep_col = QVBoxLayout(dep_box)
        dep_col.addWidget(self.deps_note)
        dep_col.addWidget(self.deps)
        dep_row = QHBoxLayout()
        dep_row.addStretch(1)
        dep_row.addWidget(self.release_button)
        dep_row.addWidget(self.cancel_button)
        dep_col.addLayout(dep_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(box, 3)
        layout.addWidget(dep_box, 2)
        sync.store.job_log_listeners.append(self.refresh)
        self._enable()

    # --- loading ----------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload for the store's selected job (called when its job log is reloaded)."""
        self.job_id = self.sync.store.selected_job_id
        if self.job_id is None:
            self._show([], [])
            return
        self.sync.spawn(self.load(self.job_id))

    async def load(self, job_id: int) -> None:
        try:
            entries = await self.sync.client.blocklist(job_id)
            deps = await self.sync.client.dependencies(job_id)
        except ApiError as exc:
            if exc.status_code == 404:  # deleted meanwhile
                return
            raise
        if job_id == self.job_id:
            self._show(entries, deps)

    def _show(self, entries: list[BlocklistEntry], deps: list[Dependency]) -> None:
        self.entries, self.dependencies = entries, deps
        self.blocklist.setRowCount(len(entries))
        for r, e in enumerate(entries):
            may = "no (blocklisted)" if e.blocked else f"yes ({e.threshold - e.failures} more failures allowed)"
            for c, value in enumerate((e.worker_name, e.task_type, str(e.failures), may, e.manager_name)):
                self.blocklist.setItem(r, c, QTableWidgetItem(value))
        blocked = sum(e.blocked for e in entries)
        self.blocklist_note.setText(
            f"{blocked} of {len(entries)} workers may no longer run some of its tasks" if entries else "No failures."
        )
        self.deps.setRowCount(len(deps))
        for r, d in enumerate(deps):
            status = d.status or "deleted"
            for c, value in enumerate((str(d.job_id), d.name or "", status)):
                self.deps.setItem(r, c, QTableWidgetItem(value))
        stuck = [d for d in deps if d.blocking]
        if stuck:
            names = ", ".join(f"job {d.job_id} ({d.name}) {d.status}" for d in stuck)
            self.deps_note.setText(f"This job waits for {names}: it will not run unless released or canceled.")
            self.deps_note.setStyleSheet("color: #b02a2a; font-weight: bold;")
        else:
            self.deps_note.setText("It waits for no job." if not deps else "It runs once these have completed.")
            self.deps_note.setStyleSheet("")
        self._enable()
        self.loaded.emit()

    def _enable(self) -> None:
        # as the job actions: an artist's buttons on another's job would only meet the Server's refusal (an audit)
        job = self.sync.store.jobs.items.get(self.job_id) if self.job_id is not None else None
        refusal = self.access.jobs_refusal([job.submitter if job is not None else None]) if self.job_id else ""
        self.clear_button.setEnabled(not refusal and bool(self.blocklist.selectionModel().selectedRows()))
        self.release_button.setEnabled(not refusal and any(d.blocking or d.status is None for d in self.dependencies))
        self.cancel_button.setEnabled(not refusal and any(d.blocking for d in self.dependencies))
        for button, why in (
            (self.clear_button, CLEAR_TIP),
            (self.release_button, ""),
            (self.cancel_button, ""),
        ):
            button.setToolTip(refusal or why)

    # --- actions ----------------------------------------------------------------------------------------------

    def clear_selected(self) -> None:
        rows = sorted({i.row() for i in self.blocklist.selectionModel().selectedRows()})
        chosen = [(self.entries[r].worker_id, self.entries[r].task_type) for r in rows if r < len(self.entries)]
        if chosen and self.job_id is not None:
            self.sync.spawn(self._clear(self.job_id, chosen))

    async def _clear(self, job_id: int, chosen: list[tuple[str, str]]) -> None:
        cleared = await self.sync.client.clear_blocklist(job_id, chosen)
        self.done.emit(f"Job {job_id}: {cleared} blocklist entries cleared")
        await self.load(job_id)

    def release(self) -> None:
        if self.job_id is None:
            return
        if self.confirm("Release job", f"Let job {self.job_id} run without the jobs that failed or were canceled?"):
            self.sync.spawn(self._release(self.job_id))

    async def _release(self, job_id: int) -> None:
        await self.sync.client.release_job(job_id, reason="released from the app")
        self.done.emit(f"Job {job_id}: released from its failed dependencies")
        await self.load(job_id)

    def cancel_job(self) -> None:
        if self.job_id is None:
            return
        if self.confirm("Cancel job", f"Cancel job {self.job_id}? It would only wait for ever."):
            self.sync.spawn(self._cancel(self.job_id))

    async def _cancel(self, job_id: int) -> None:
        await self.sync.client.job_action(job_id, JobAction.CANCEL, reason="its dependency failed")
        self.done.emit(f"Job {job_id}: canceled")
        await self.load(job_id)

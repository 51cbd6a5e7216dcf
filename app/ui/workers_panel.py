"""The workers tab: the farm view, the workers table with its actions, one worker's utilisation graph (with the
history the Server keeps) and the farm graph."""

from __future__ import annotations

from collections.abc import Callable

from app.models.access import UserAccess
from app.models.farm_models import WorkersModel
from app.models.previews import PreviewSource
from app.models.sync import FarmSync
from app.models.worker_history import HistoryLoader
from app.qt import QAction, QMenu, QPoint, QSplitter, Qt, QTimer, QVBoxLayout, QWidget
from app.ui.actions import Confirm, show_refusal
from app.ui.farm_view import FarmHeader
from app.ui.graphs.plots import FarmPlot, UtilisationPlot
from app.ui.preview_view import PreviewView
from app.ui.sleep_schedule import ManagerSchedules, SleepScheduleDialog
from app.ui.tables import make_view, selected_keys
from app.ui.worker_actions import AskText, WorkerActions

SAMPLE_MS = 2000  # one farm sample and one redraw of the graphs every two seconds


class WorkersPanel(QWidget):
    def __init__(
        self,
        sync: FarmSync,
        confirm: Confirm | None = None,
        parent: QWidget | None = None,
        manager: Callable[[], tuple[str, str]] = lambda: ("", ""),
        ask_text: AskText | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(parent)
        self.sync = sync
        self.access = access or UserAccess(self)
        self.schedules = ManagerSchedules(manager)
        self.schedule_action = QAction("Sleep schedule…", self)
        self.schedule_action.triggered.connect(self.edit_schedule)
        self.model = WorkersModel(sync.store, self)
        self.view, self.proxy = make_view(self.model, self)
        self.view.setObjectName("workers-table")
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.actions_ = WorkerActions(
            sync, self.selected_worker_ids, self, confirm=confirm, ask_text=ask_text, access=self.access
        )
        self.access.changed.connect(self.update_enabled)
        self.history = HistoryLoader(sync.store, sync.client)
        self.farm_view = FarmHeader(sync, self)
        self.view.customContextMenuRequested.connect(self._menu_at)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.utilisation = UtilisationPlot(sync.store, self)
        self.farm = FarmPlot(sync.store, self)
        graphs = QSplitter(Qt.Orientation.Horizontal, self)
        graphs.addWidget(self.utilisation.widget)
        graphs.addWidget(self.farm.widget)
        self.preview = PreviewView(PreviewSource(sync, "workers", self), self)  # the worker's last-rendered frame
        self.preview.setObjectName("worker-preview")
        graphs.addWidget(self.preview)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.view)
        split.addWidget(graphs)
        split.setSizes([350, 250])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.farm_view)
        layout.addWidget(split)
        self.timer = QTimer(self)
        self.timer.setInterval(SAMPLE_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.utilisation.show_worker(None)
        self.update_enabled()

    def tick(self) -> None:
        self.farm_view.refresh()
        self.sync.store.sample_farm()
        self.farm.redraw()
        self.utilisation.redraw()

    def selected_worker_ids(self) -> list[str]:
        return [str(k) for k in selected_keys(self.view) if k is not None]

    def update_enabled(self) -> None:
        """The worker actions and the sleep schedule (the Manager's rule: wranglers and admins change it)."""
        self.actions_.update_enabled()
        show_refusal(self.schedule_action, bool(self.selected_worker_ids()), self.access.workers_refusal())

    def _selection_changed(self) -> None:
        ids = self.selected_worker_ids()
        self.update_enabled()
        self.utilisation.show_worker(ids[0] if ids else None)
        self.preview.source.show(ids[0] if ids else None)
        if ids:
            self.history_load = self.sync.spawn(self._load_history(ids[0]))

    async def _load_history(self, worker_id: str) -> None:
        if await self.history.load(worker_id) and self.utilisation.worker_id == worker_id:
            self.utilisation.redraw()

    def menu(self) -> QMenu:
        menu = QMenu(self)
        for a in self.actions_.all:
            menu.addAction(a)
        menu.addAction(self.schedule_action)
        return menu

    def edit_schedule(self) -> None:
        ids = self.selected_worker_ids()
        if ids:
            self.sync.spawn(self._edit_schedule(ids[0]))

    async def _edit_schedule(self, worker_id: str) -> None:
        worker = self.sync.store.workers.get(worker_id)
        dialog = SleepScheduleDialog(worker.name if worker else worker_id, await self.schedules.get(worker_id), self)
        dialog.accepted.connect(lambda: self.sync.spawn(self.schedules.put(worker_id, dialog.result_schedule)))
        dialog.open()
        self.schedule_dialog = dialog

    def _menu_at(self, pos: QPoint) -> None:
        self.menu().popup(self.view.viewport().mapToGlobal(pos))

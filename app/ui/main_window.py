"""The main window: jobs, tasks and job log; workers with graphs; managers; the local farm; status bar."""

from __future__ import annotations

import asyncio
from typing import Any

from app.blender_install import InstallResult, install_addon
from app.embedded import EmbeddedFarm
from app.models.access import UserAccess
from app.models.sync import ConnectionState, FarmSync
from app.qt import (
    QAction,
    QCloseEvent,
    QIcon,
    QInputDialog,
    QLabel,
    QMainWindow,
    QStyle,
    QTabWidget,
    QTimer,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
    plain_label,
)
from app.ui.actions import Confirm
from app.ui.admin import AdminAccess
from app.ui.app_icon import app_icon
from app.ui.jobs_panel import JobsPanel
from app.ui.managers_panel import ManagersPanel
from app.ui.message_bar import MessageBar
from app.ui.notifications import Notifier
from app.ui.services_panel import ServicesPanel
from app.ui.submit_dialog import SubmitDialog
from app.ui.task_log import TaskLogDialog
from app.ui.workers_panel import WorkersPanel

STATE_STYLE = {
    ConnectionState.CONNECTED: "color: #2f9e44;",
    ConnectionState.RECONNECTING: "color: #c28a1a; font-weight: bold;",
    ConnectionState.CONNECTING: "color: #5b7fa6;",
    ConnectionState.UNAUTHORIZED: "color: #d63a3a; font-weight: bold;",
    ConnectionState.STOPPED: "color: #8a8a8a;",
}


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(
        self,
        sync: FarmSync,
        token: str,
        farm: EmbeddedFarm | None = None,
        manager_url: str = "",
        confirm: Confirm | None = None,
    ) -> None:
        super().__init__()
        self.sync = sync
        self.token = token
        self.farm = farm
        self.manager_url = manager_url or (farm.manager_url if farm else "")
        self.setWindowTitle(f"Tablao — {sync.client.base_url}")
        self.resize(1280, 800)
        icon = app_icon() or self.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
        self.setWindowIcon(icon)
        self._dialogs: list[Any] = []
        self.background: list[asyncio.Task[None]] = []  # start-up work the window outlives

        self.message_bar = MessageBar(self)
        self.access = UserAccess(self)  # who is signed in (learned by self.admin): the actions offered follow it
        self.jobs = JobsPanel(sync, confirm=confirm, parent=self, access=self.access)
        self.workers = WorkersPanel(
            sync, confirm=confirm, parent=self, manager=lambda: (self.manager_url, self.token), access=self.access
        )
        self.managers = ManagersPanel(sync, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.jobs, "Jobs")
        self.tabs.addTab(self.workers, "Workers")
        self.tabs.addTab(self.managers, "Managers")
        self.services: ServicesPanel | None = None
        if farm is not None:
            self.services = ServicesPanel(farm, self)
            self.tabs.addTab(self.services, "Local farm")
            farm.message.connect(self.message_bar.show_message)
        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.message_bar)
        col.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._toolbar()
        self.connection = plain_label(QLabel(self))
        self.connection.setObjectName("connection-state")
        self.counts = plain_label(QLabel(self))
        self.statusBar().addWidget(self.connection)
        # the bar's history, also when the bar was dismissed
        self.messages_button = QToolButton(self)
        self.messages_button.setText("Messages")
        self.messages_button.setObjectName("messages-button")
        self.messages_button.setToolTip("The last messages shown at the top of the window, with their times")
        self.messages_button.clicked.connect(self.message_bar.show_history)
        self.statusBar().addPermanentWidget(self.messages_button)
        self.statusBar().addPermanentWidget(self.counts)
        sync.state_changed.connect(self._state_changed)
        sync.error.connect(self.message_bar.show_message)
        for actions in (self.jobs.job_actions, self.jobs.task_actions, self.workers.actions_, self.jobs.failures):
            actions.done.connect(lambda text: self.statusBar().showMessage(text, 5000))
        for many in (self.jobs.job_actions, self.jobs.task_actions, self.workers.actions_):
            many.reported.connect(self.message_bar.show_message)  # an action on many items: its outcome stays
        self.jobs.task_log_requested.connect(self.open_task_log)
        self.notifier = Notifier(icon, self._notify_in_window, self)
        sync.store.job_finished_listeners.append(self.notifier.job_finished)
        # the user's role, and the Administration menu for an admin's token only
        self.admin = AdminAccess(self, sync, confirm, self.access)
        self._state_changed(sync.state.value)
        self.counts_timer = QTimer(self)
        self.counts_timer.setInterval(500)
        self.counts_timer.timeout.connect(self.update_counts)
        self.counts_timer.start()

    def _toolbar(self) -> None:
        bar = QToolBar("Actions", self)
        bar.setObjectName("actions-toolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.submit_action = QAction(QIcon.fromTheme("document-new"), "Submit job…", self)
        self.submit_action.setShortcut("Ctrl+N")
        self.submit_action.triggered.connect(self.open_submit_dialog)
        bar.addAction(self.submit_action)
        bar.addSeparator()
        for a in self.jobs.job_actions.all:
            bar.addAction(a)
        bar.addSeparator()
        manager = QAction("Manager address…", self)
        manager.triggered.connect(self._ask_manager_url)
        bar.addAction(manager)
        self.last_addon_install: InstallResult | None = None
        self.install_addon_action = QAction("Install the Blender add-on", self)
        self.install_addon_action.setToolTip("Install and enable Tablao's add-on in the Blender found on this machine")
        self.install_addon_action.triggered.connect(lambda: self.sync.spawn(self.install_blender_addon()))
        bar.addAction(self.install_addon_action)

    # --- status ---------------------------------------------------------------------------------
    def _state_changed(self, state: str) -> None:
        s = ConnectionState(state)
        text = {ConnectionState.RECONNECTING: "reconnecting…"}.get(s, s.value)
        self.connection.setText(f"● {text} — {self.sync.client.base_url}")
        self.connection.setStyleSheet(STATE_STYLE.get(s, ""))

    def update_counts(self) -> None:
        c = self.sync.store.counts()
        running = c.jobs.get("active", 0)
        queued = c.jobs.get("queued", 0) + c.jobs.get("requeueing", 0)
        workers = sum(c.workers.values())
        awake = c.workers.get("awake", 0)
        self.counts.setText(
            f"jobs: {running} active, {queued} queued, {sum(c.jobs.values())} total   "
            f"workers: {awake} awake of {workers}   managers: {c.managers}"
        )

    def _notify_in_window(self, title: str, body: str) -> None:
        self.message_bar.show_message(f"{title}: {body}", error=title.endswith("failed"))

    # --- dialogs --------------------------------------------------------------------------------
    def open_submit_dialog(self) -> SubmitDialog:
        dialog = SubmitDialog(self.sync.client, self, self.access)
        dialog.submitted.connect(lambda job: self.statusBar().showMessage(f"Submitted job {job.id}", 5000))
        dialog.submitted.connect(lambda job: QTimer.singleShot(200, self.jobs, lambda: self.jobs.select_job(job.id)))
        # the link coming back (the event stream reconnected) lets a dialog opened meanwhile load at once
        self.sync.state_changed.connect(dialog.link_state)
        dialog.load_in_background()
        dialog.open()
        return dialog

    def open_task_log(self, task_id: int) -> TaskLogDialog:
        dialog = TaskLogDialog(self.sync.client, self.token, task_id, self)
        dialog.finished.connect(lambda _r: self._dialogs.remove(dialog))
        self._dialogs.append(dialog)
        dialog.show()
        dialog.start()
        return dialog

    def reveal_job_later(self, job_id: int) -> None:
        """Select a job once the store has it (a `tablao://job/ID` link opened the app)."""

        async def reveal() -> None:
            await self.reveal_job(job_id)

        self.background.append(self.sync.spawn(reveal()))

    async def reveal_job(self, job_id: int, within: float = 30.0) -> bool:
        deadline = asyncio.get_running_loop().time() + within
        while self.sync.store.jobs.get(job_id) is None:
            if asyncio.get_running_loop().time() > deadline:
                self.message_bar.show_message(f"Job {job_id} was not found on this Server.")
                return False
            await asyncio.sleep(0.1)
        self.tabs.setCurrentWidget(self.jobs)
        self.jobs.select_job(job_id)
        return True

    async def install_blender_addon(self) -> None:
        self.install_addon_action.setEnabled(False)
        self.statusBar().showMessage("Installing the Blender add-on…")
        try:
            result = await install_addon()
        finally:
            self.install_addon_action.setEnabled(True)
        self.statusBar().showMessage(result.message, 10000)
        self.last_addon_install = result
        if not result.ok:
            self.message_bar.show_message(result.message, error=True)

    def _ask_manager_url(self) -> None:
        text, ok = QInputDialog.getText(
            self, "Manager address", "Workers' sleep schedules are read from this Manager:", text=self.manager_url
        )
        if ok:
            self.manager_url = text.strip()

    # --- shutdown -------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop listening, then stop the local farm unless the user chose to leave it running."""
        self.counts_timer.stop()
        self.workers.timer.stop()
        for task in self.background:
            task.cancel()
        await self.sync.stop()
        await self.sync.client.aclose()
        if self.farm is not None:
            await self.farm.stop_all()
        await asyncio.sleep(0)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit()
        super().closeEvent(event)

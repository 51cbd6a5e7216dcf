"""The admin's window onto the farm (users, API tokens, Managers, webhooks) and the menu that opens it.

The menu appears only for a token the Server says is an admin's; the Server refuses anyone else's admin calls
anyway, so hiding it is for clarity, not protection.
"""

from __future__ import annotations

import asyncio

import httpx

from app.models.access import UserAccess
from app.models.sync import ConnectionState, FarmSync
from app.qt import QAction, QDialog, QMainWindow, QMenu, QObject, QPushButton, QTabWidget, QVBoxLayout, QWidget
from app.ui.actions import Confirm, confirm_box
from app.ui.admin.common import Spawn, spawner
from app.ui.admin.managers_tab import ManagersTab
from app.ui.admin.tokens_tab import TokensTab
from app.ui.admin.users_tab import UsersTab
from app.ui.admin.webhooks_tab import WebhooksTab
from services.protocol.admin_client import AdminClient
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.states import Role


class AdminDialog(QDialog):
    def __init__(self, client: ServerClient, spawn: Spawn, confirm: Confirm, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Farm administration")
        self.resize(900, 520)
        self.spawn = spawn
        admin = AdminClient(client)
        self.users = UsersTab(admin, spawn, confirm, self)
        self.tokens = TokensTab(admin, spawn, confirm, self)
        self.managers = ManagersTab(admin, spawn, confirm, lambda: client.base_url, self)
        self.webhooks = WebhooksTab(admin, spawn, confirm, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.users, "Users")
        self.tabs.addTab(self.tokens, "API tokens")
        self.tabs.addTab(self.managers, "Managers")
        self.tabs.addTab(self.webhooks, "Webhooks")
        self.tabs.currentChanged.connect(lambda _i: self.spawn(self.refresh_current()))
        reload_ = QPushButton("Reload", self)
        reload_.clicked.connect(lambda _c=False: self.spawn(self.refresh_current()))
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(reload_)

    async def refresh_current(self) -> None:
        tab = self.tabs.currentWidget()
        if isinstance(tab, UsersTab | TokensTab | ManagersTab | WebhooksTab):
            await tab.refresh()

    async def refresh_all(self) -> None:
        await asyncio.gather(
            self.users.refresh(), self.tokens.refresh(), self.managers.refresh(), self.webhooks.refresh()
        )


class AdminAccess(QObject):
    """Learns the token's user and role from the Server (`/me`) at each connection, tells `access` (the actions
    offered follow it), and gives an admin the Administration menu."""

    def __init__(
        self, window: QMainWindow, sync: FarmSync, confirm: Confirm | None = None, access: UserAccess | None = None
    ) -> None:
        super().__init__(window)
        self.window = window
        self.sync = sync
        self.confirm = confirm or confirm_box(window)
        self.access = access or UserAccess(self)
        self.spawn = spawner(sync.spawn)
        self.role: Role | None = None
        self.menu: QMenu | None = None
        self.action: QAction | None = None
        self.dialog: AdminDialog | None = None
        self._checking = False
        sync.state_changed.connect(self._state_changed)

    def _state_changed(self, state: str) -> None:
        # asked at every (re)connection: an admin may have changed the user's role meanwhile
        if state == ConnectionState.CONNECTED and not self._checking:
            self.spawn(self.check())

    async def check(self) -> Role | None:
        """Ask who the token belongs to; add the menu for an admin. Unreachable: asked again once connected."""
        self._checking = True
        try:
            me = await self.sync.client.me()
        except ApiError as exc:
            if exc.status_code in (401, 403):  # a refused token is the sync's to report
                return None
            raise
        except (httpx.HTTPError, OSError):  # not reachable now: asked again once the sync connects
            return None
        finally:
            self._checking = False
        self.role = me.role
        self.access.set_user(me.name, me.role, me.priority_cap)
        if self.menu is not None:
            self.menu.menuAction().setVisible(self.role == Role.ADMIN)
        elif self.role == Role.ADMIN:
            self.menu = self.window.menuBar().addMenu("&Administration")
            self.menu.setObjectName("admin-menu")
            self.action = QAction("Users, tokens, Managers and webhooks…", self.window)
            self.action.triggered.connect(lambda _c=False: self.open())
            self.menu.addAction(self.action)
        return self.role

    def open(self) -> AdminDialog:
        if self.dialog is None:
            self.dialog = AdminDialog(self.sync.client, self.spawn, self.confirm, self.window)
        self.dialog.show()
        self.spawn(self.dialog.refresh_all())
        return self.dialog

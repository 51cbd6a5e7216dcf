"""The admin's Managers tab: add a Manager (its token shown once, with the command that starts it) and remove one."""

from __future__ import annotations

from collections.abc import Callable

from app.qt import QInputDialog, QWidget
from app.ui.actions import Confirm
from app.ui.admin.common import AdminTab, Spawn, when
from services.protocol.admin_client import AdminClient
from services.protocol.farm import Manager, ManagerCreated


class ManagersTab(AdminTab):
    def __init__(
        self,
        admin: AdminClient,
        spawn: Spawn,
        confirm: Confirm,
        server_url: Callable[[], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(("Id", "Name", "Status", "Workers", "Awake", "Last seen"), spawn, parent)
        self.admin = admin
        self.confirm = confirm
        self.server_url = server_url
        self.managers: dict[int, Manager] = {}
        self.add_button("Add Manager…", self._ask_add, "add-manager")
        self.add_button("Remove…", self._ask_remove, "remove-manager")
        self.buttons.addStretch(1)

    async def refresh(self) -> None:
        managers = await self.attempt(self.admin.managers())
        if managers is None:
            return
        self.managers = {m.id: m for m in managers}
        self.set_rows(
            [
                (
                    m.id,
                    (str(m.id), m.name, m.status.value, str(m.workers_total), str(m.workers_awake), when(m.last_seen)),
                )
                for m in managers
            ]
        )

    async def add(self, name: str) -> ManagerCreated | None:
        manager = await self.attempt(self.admin.create_manager(name))
        if manager is not None:
            self.say(f"Added Manager {manager.name}.")
            self.show_secret(
                "New Manager",
                f"The token of Manager {manager.name}. On the Manager's machine, save it in a file only its user can "
                f"read and start it with:\n\n  tablao manager --server {self.server_url()} --token-file FILE",
                manager.token,
            )
            await self.refresh()
            self.select(manager.id)
        return manager

    async def remove(self, manager_id: int) -> bool:
        if not await self.succeeds(self.admin.remove_manager(manager_id)):
            return False
        self.say(f"Removed Manager {manager_id}: the tasks it held are queued again.")
        await self.refresh()
        return True

    def _ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a Manager", "Name (letters, digits, . _ @ -):")
        if ok and name.strip():
            self.spawn(self.add(name.strip()))

    def _ask_remove(self) -> None:
        manager = self.managers.get(self.selected())
        if manager is None:
            self.say("Select a Manager first.", error=True)
            return
        text = (
            f"Remove Manager {manager.name}? Its token stops working, its {manager.workers_total} workers are "
            "forgotten and the tasks it holds go back to the queue."
        )
        if self.confirm("Remove Manager", text):
            self.spawn(self.remove(manager.id))

"""The admin's Users tab: who may use the farm and in which role; add, change the role, disable, set a password."""

from __future__ import annotations

from app.qt import QComboBox, QDialog, QInputDialog, QLineEdit, QWidget, as_html
from app.ui.actions import Confirm
from app.ui.admin.common import AdminTab, FormDialog, Spawn, when
from services.protocol.admin_client import AdminClient
from services.protocol.farm import User
from services.protocol.states import Role

ROLES = [r.value for r in Role]


class UsersTab(AdminTab):
    def __init__(self, admin: AdminClient, spawn: Spawn, confirm: Confirm, parent: QWidget | None = None) -> None:
        super().__init__(("Name", "Role", "State", "Created"), spawn, parent)
        self.admin = admin
        self.confirm = confirm
        self.users: dict[int, User] = {}
        self.add_button("Add user…", self._ask_add, "add-user")
        self.add_button("Change role…", self._ask_role, "change-role")
        self.toggle = self.add_button("Disable", self._ask_toggle, "toggle-user")
        self.add_button("Set password…", self._ask_password, "set-password")
        self.buttons.addStretch(1)
        self.table.itemSelectionChanged.connect(self._selection_changed)

    async def refresh(self) -> None:
        users = await self.attempt(self.admin.users())
        if users is None:
            return
        self.users = {u.id: u for u in users}
        self.set_rows(
            [(u.id, (u.name, u.role.value, "disabled" if u.disabled else "enabled", when(u.created))) for u in users]
        )
        self._selection_changed()

    def _selection_changed(self) -> None:
        user = self.users.get(self.selected())
        self.toggle.setText("Enable" if user is not None and user.disabled else "Disable")

    # --- actions (awaitable: the buttons ask for input, then run these) --------------------------
    async def add(self, name: str, role: Role, password: str = "") -> User | None:
        user = await self.attempt(self.admin.add_user(name, role, password or None))
        if user is not None:
            self.say(f"Added {user.name} ({user.role}).")
            await self.refresh()
            self.select(user.id)
        return user

    async def change(
        self, user_id: int, *, role: Role | None = None, disabled: bool | None = None, password: str | None = None
    ) -> User | None:
        user = await self.attempt(self.admin.change_user(user_id, role=role, disabled=disabled, password=password))
        if user is not None:
            state = "disabled" if user.disabled else "enabled"
            self.say(f"{user.name} is now {user.role}, {state}.")
            await self.refresh()
        return user

    # --- input ----------------------------------------------------------------------------------
    def _ask_add(self) -> None:
        name, role, password = QLineEdit(), QComboBox(), QLineEdit()
        role.addItems(ROLES)
        role.setCurrentText(Role.ARTIST.value)
        password.setEchoMode(QLineEdit.EchoMode.Password)
        password.setPlaceholderText("at least 8 characters; empty: the user logs in with API tokens only")
        form = FormDialog("Add a user", [("Name", name), ("Role", role), ("Password", password)], self)
        if form.exec() == QDialog.DialogCode.Accepted:
            self.spawn(self.add(name.text().strip(), Role(role.currentText()), password.text()))

    def _ask_role(self) -> None:
        user = self.users.get(self.selected())
        if user is None:
            self.say("Select a user first.", error=True)
            return
        role, ok = QInputDialog.getItem(
            self, "Change role", as_html(f"Role of {user.name}:"), ROLES, ROLES.index(user.role)
        )
        if ok:
            self.spawn(self.change(user.id, role=Role(role)))

    def _ask_toggle(self) -> None:
        user = self.users.get(self.selected())
        if user is None:
            self.say("Select a user first.", error=True)
            return
        if not user.disabled and not self.confirm(
            "Disable user", f"Disable {user.name}? Their tokens stop working at once and they cannot log in."
        ):
            return
        self.spawn(self.change(user.id, disabled=not user.disabled))

    def _ask_password(self) -> None:
        user = self.users.get(self.selected())
        if user is None:
            self.say("Select a user first.", error=True)
            return
        password, ok = QInputDialog.getText(
            self, "Set password", f"New password of {user.name}:", QLineEdit.EchoMode.Password
        )
        if ok:
            self.spawn(self.change(user.id, password=password))

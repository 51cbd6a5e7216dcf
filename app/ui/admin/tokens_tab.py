"""The admin's API tokens tab: every token with its user; create one (shown once) and revoke."""

from __future__ import annotations

from app.qt import QComboBox, QDialog, QDoubleSpinBox, QLineEdit, QWidget
from app.ui.actions import Confirm
from app.ui.admin.common import AdminTab, FormDialog, Spawn, when
from services.protocol.admin_client import AdminClient
from services.protocol.farm import ApiToken, TokenCreated


class TokensTab(AdminTab):
    def __init__(self, admin: AdminClient, spawn: Spawn, confirm: Confirm, parent: QWidget | None = None) -> None:
        super().__init__(("Id", "User", "Name", "Created", "Last used", "Expires"), spawn, parent)
        self.admin = admin
        self.confirm = confirm
        self.tokens: dict[int, ApiToken] = {}
        self.add_button("Create token…", self._ask_create, "create-token")
        self.add_button("Revoke…", self._ask_revoke, "revoke-token")
        self.buttons.addStretch(1)

    async def refresh(self) -> None:
        tokens = await self.attempt(self.admin.tokens())
        if tokens is None:
            return
        self.tokens = {t.id: t for t in tokens}
        self.set_rows(
            [
                (t.id, (str(t.id), t.user, t.name, when(t.created), when(t.last_used), when(t.expires) or "never"))
                for t in tokens
            ]
        )

    async def create_token(self, user: str, name: str = "", expires_days: float | None = None) -> TokenCreated | None:
        token = await self.attempt(self.admin.create_token(user, name, expires_days))
        if token is not None:
            self.say(f"Created token {token.id} for {token.user}.")
            self.show_secret(
                "New API token",
                f"The API token of {token.user} ({token.role}), named '{token.name}'. Give it to its user; it is "
                "pasted in the app's start dialog, the Blender add-on or `--token-file`.",
                token.token,
            )
            await self.refresh()
            self.select(token.id)
        return token

    async def revoke(self, token_id: int) -> bool:
        if not await self.succeeds(self.admin.revoke_token(token_id)):
            return False
        self.say(f"Revoked token {token_id}: it stops working at once.")
        await self.refresh()
        return True

    async def users(self) -> list[str]:
        users = await self.attempt(self.admin.users())
        return [u.name for u in users or [] if not u.disabled]

    def _ask_create(self) -> None:
        async def ask() -> None:
            user, name, days = QComboBox(), QLineEdit(), QDoubleSpinBox()
            user.addItems(await self.users())
            days.setRange(0, 3650)
            days.setDecimals(0)
            days.setSpecialValueText("never")
            form = FormDialog("Create an API token", [("User", user), ("Name", name), ("Expires after days", days)])
            if form.exec() == QDialog.DialogCode.Accepted and user.currentText():
                await self.create_token(user.currentText(), name.text().strip(), days.value() or None)

        self.spawn(ask())

    def _ask_revoke(self) -> None:
        token = self.tokens.get(self.selected())
        if token is None:
            self.say("Select a token first.", error=True)
            return
        if self.confirm("Revoke token", f"Revoke token {token.id} ('{token.name}') of {token.user}?"):
            self.spawn(self.revoke(token.id))

"""The admin's Webhooks tab: the URLs the Server calls when jobs complete or fail (e.g. a studio chat)."""

from __future__ import annotations

from app.qt import QCheckBox, QDialog, QLineEdit, QWidget
from app.ui.actions import Confirm
from app.ui.admin.common import AdminTab, FormDialog, Spawn, when
from services.protocol.admin import SUBSCRIBABLE, Webhook, WebhookCreated, WebhookEvent
from services.protocol.admin_client import AdminClient


class WebhooksTab(AdminTab):
    def __init__(self, admin: AdminClient, spawn: Spawn, confirm: Confirm, parent: QWidget | None = None) -> None:
        super().__init__(("Name", "URL", "Events", "State", "Waiting", "Last delivered", "Last error"), spawn, parent)
        self.admin = admin
        self.confirm = confirm
        self.hooks: dict[int, Webhook] = {}
        self.add_button("Add webhook…", self._ask_add, "add-webhook")
        self.toggle = self.add_button("Disable", self._toggle, "toggle-webhook")
        self.add_button("Send a test", self._test, "test-webhook")
        self.add_button("Remove…", self._ask_remove, "remove-webhook")
        self.buttons.addStretch(1)
        self.table.itemSelectionChanged.connect(self._selection_changed)

    async def refresh(self) -> None:
        hooks = await self.attempt(self.admin.webhooks())
        if hooks is None:
            return
        self.hooks = {h.id: h for h in hooks}
        self.set_rows(
            [
                (
                    h.id,
                    (
                        h.name,
                        h.url,
                        ", ".join(e.value for e in h.events),
                        "enabled" if h.enabled else "disabled",
                        str(h.pending),
                        when(h.last_delivered),
                        h.last_error,
                    ),
                )
                for h in hooks
            ]
        )
        self._selection_changed()

    def _selection_changed(self) -> None:
        hook = self.hooks.get(self.selected())
        self.toggle.setText("Enable" if hook is not None and not hook.enabled else "Disable")

    async def add(self, name: str, url: str, events: list[WebhookEvent]) -> WebhookCreated | None:
        hook = await self.attempt(self.admin.create_webhook(name, url, events))
        if hook is not None:
            self.say(f"Added webhook {hook.name}.")
            self.show_secret(
                "New webhook",
                f"The signing secret of webhook {hook.name}. Each call carries X-Tablao-Signature: sha256=<HMAC of "
                "the body with this secret>, so a receiver can tell the calls are the farm's.",
                hook.secret,
            )
            await self.refresh()
            self.select(hook.id)
        return hook

    async def set_enabled(self, webhook_id: int, enabled: bool) -> Webhook | None:
        hook = await self.attempt(self.admin.change_webhook(webhook_id, enabled=enabled))
        if hook is not None:
            self.say(f"Webhook {hook.name} is {'enabled' if hook.enabled else 'disabled'}.")
            await self.refresh()
        return hook

    async def send_test(self, webhook_id: int) -> str | None:
        queued = await self.attempt(self.admin.test_webhook(webhook_id))
        if queued is not None:
            self.say(f"A test call is on its way (key {queued.id}); the table shows whether it arrived.")
            await self.refresh()
        return queued.id if queued is not None else None

    async def remove(self, webhook_id: int) -> bool:
        if not await self.succeeds(self.admin.delete_webhook(webhook_id)):
            return False
        self.say("Removed the webhook and the calls still waiting for it.")
        await self.refresh()
        return True

    def _ask_add(self) -> None:
        name, url = QLineEdit(), QLineEdit()
        url.setPlaceholderText("https://chat.example.com/hooks/…")
        boxes = {e: QCheckBox(e.value) for e in SUBSCRIBABLE}
        for e in (WebhookEvent.JOB_COMPLETED, WebhookEvent.JOB_FAILED):
            boxes[e].setChecked(True)
        rows: list[tuple[str, QWidget]] = [("Name", name), ("URL", url)]
        rows += [("Calls on" if i == 0 else "", box) for i, box in enumerate(boxes.values())]
        form = FormDialog("Add a webhook", rows, self)
        if form.exec() == QDialog.DialogCode.Accepted:
            events = [e for e, box in boxes.items() if box.isChecked()]
            self.spawn(self.add(name.text().strip(), url.text().strip(), events))

    def _selected(self) -> Webhook | None:
        hook = self.hooks.get(self.selected())
        if hook is None:
            self.say("Select a webhook first.", error=True)
        return hook

    def _toggle(self) -> None:
        if (hook := self._selected()) is not None:
            self.spawn(self.set_enabled(hook.id, not hook.enabled))

    def _test(self) -> None:
        if (hook := self._selected()) is not None:
            self.spawn(self.send_test(hook.id))

    def _ask_remove(self) -> None:
        hook = self._selected()
        if hook is not None and self.confirm("Remove webhook", f"Remove webhook {hook.name} ({hook.url})?"):
            self.spawn(self.remove(hook.id))

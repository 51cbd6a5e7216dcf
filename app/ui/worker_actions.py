"""What a wrangler can do to the selected workers: sleep now or after the task, wake, restart, shut down,
edit tags, forget; each a QAction, confirmed when it stops work or cannot be undone.

They are offered to wranglers and admins only (an artist sees them disabled, the tooltip saying why); the Server
checks the role again and refuses to forget a worker that is not offline; its answer is shown in the window's
message bar like every other refusal.
"""

from __future__ import annotations

from collections.abc import Callable

from app.models.access import UserAccess
from app.models.sync import FarmSync
from app.qt import QInputDialog, QLineEdit, QWidget, as_html
from app.ui import bulk
from app.ui.actions import Confirm, SelectionActions
from services.protocol.states import WorkerStatusRequest

AskText = Callable[[str, str, str], str | None]  # (title, label, current) -> text, None when canceled


def ask_text_box(parent: QWidget | None) -> AskText:
    def ask(title: str, label: str, value: str) -> str | None:
        text, ok = QInputDialog.getText(parent, title, as_html(label), QLineEdit.EchoMode.Normal, value)
        return text if ok else None

    return ask


def parse_tags(text: str) -> list[str]:
    """Tags as typed: separated by commas or spaces, duplicates dropped, in order."""
    return list(dict.fromkeys(t for t in text.replace(",", " ").split() if t))


class WorkerActions(SelectionActions[str]):
    def __init__(
        self,
        sync: FarmSync,
        selected: Callable[[], list[str]],
        parent: QWidget,
        confirm: Confirm | None = None,
        ask_text: AskText | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(sync, selected, parent, confirm, access)
        self.ask_text = ask_text or ask_text_box(parent)
        self.sleep_now = self._action("Sleep now…", "worker-sleep-now", lambda ids: self._status(ids, "asleep", False))
        self.sleep = self._action(
            "Sleep after the current task", "worker-sleep", lambda ids: self._status(ids, "asleep")
        )
        self.wake = self._action("Wake", "worker-wake", lambda ids: self._status(ids, "awake"))
        self.restart = self._action("Restart…", "worker-restart", lambda ids: self._status(ids, "restart"))
        self.shutdown = self._action("Shut down…", "worker-shutdown", lambda ids: self._status(ids, "shutdown"))
        self.tags = self._action("Edit tags…", "worker-tags", self._edit_tags)
        self.forget = self._action("Forget…", "worker-forget", self._forget)

    def refusal(self, ids: list[str]) -> str:
        return self.access.workers_refusal()

    def _names(self, ids: list[str]) -> str:
        names = [w.name if (w := self.sync.store.workers.get(i)) else i for i in ids[:5]]
        return ", ".join(names) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    # --- status requests ------------------------------------------------------------------------
    def _status(self, ids: list[str], status: str, lazy: bool = True) -> None:
        request = WorkerStatusRequest(status)
        questions = {
            ("asleep", False): ("Sleep now", "Send {w} to sleep now? Their running tasks are given back to the queue."),
            ("restart", True): ("Restart workers", "Restart {w}? A running task is finished first."),
            ("shutdown", True): ("Shut down workers", "Shut down {w} after their current task?"),
        }
        question = questions.get((status, lazy))
        if question and not self.confirm(question[0], question[1].format(w=self._names(ids))):
            return
        self.sync.spawn(self._send_status(ids, request, lazy))

    async def _send_status(self, ids: list[str], status: WorkerStatusRequest, lazy: bool) -> None:
        # no bulk route for workers: one request each, a few at a time (app/ui/bulk.py)
        done, refused = await bulk.each(
            ids,
            lambda w: self.sync.client.request_worker_status(w, status, lazy=lazy),
            self.progress("asking", "worker"),
        )
        when = "" if status == WorkerStatusRequest.AWAKE else (" after the current task" if lazy else " now")
        self.report(f"asked to {status.value}{when}:", "worker", len(ids), done, refused)

    # --- tags -----------------------------------------------------------------------------------
    def _edit_tags(self, ids: list[str]) -> None:
        first = self.sync.store.workers.get(ids[0])
        current = " ".join(first.tags) if first else ""
        text = self.ask_text(
            "Worker tags",
            f"Tags of {self._names(ids)} (separated by spaces or commas; jobs with tags run only on workers "
            "that have all of them):",
            current,
        )
        if text is not None:
            self.sync.spawn(self._send_tags(ids, parse_tags(text)))

    async def _send_tags(self, ids: list[str], tags: list[str]) -> None:
        async def send(worker_id: str) -> None:
            worker = await self.sync.client.set_worker_tags(worker_id, tags)
            self.sync.store.workers.upsert(worker)  # at once; the event stream confirms it

        done, refused = await bulk.each(ids, send, self.progress("tagging", "worker"))
        self.report(f"tags {', '.join(tags) or '(none)'} set on", "worker", len(ids), done, refused)

    # --- forget ---------------------------------------------------------------------------------
    def _forget(self, ids: list[str]) -> None:
        if self.confirm(
            "Forget workers",
            f"Forget {self._names(ids)}? They disappear from the farm with their history; if one comes back "
            "it must register again. Only offline workers can be forgotten.",
        ):
            self.sync.spawn(self._send_forget(ids))

    async def _send_forget(self, ids: list[str]) -> None:
        async def send(worker_id: str) -> None:
            await self.sync.client.forget_worker(worker_id)
            self.sync.store.workers.remove(worker_id)
            self.sync.store.utilisation.pop(worker_id, None)

        done, refused = await bulk.each(ids, send, self.progress("forgetting", "worker"))
        self.report("forgot", "worker", len(ids), done, refused)

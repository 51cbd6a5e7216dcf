"""What a wrangler can do to jobs, tasks and workers: QActions over the selection, confirmed when destructive.

Each action is enabled only when something is selected and the signed-in user may act on it (app/models/access.py);
a disabled one says why in its tooltip. The Server checks again and its refusal is shown as before.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from app.models.access import UserAccess
from app.models.sync import FarmSync
from app.qt import QAction, QInputDialog, QMessageBox, QObject, QWidget, Signal, as_html
from app.ui import bulk
from services.protocol.common import plural
from services.protocol.jobs import BULK_MAX, PRIORITY_DEFAULT, BulkItemResult, JobAction

Confirm = Callable[[str, str], bool]
AskInt = Callable[[str, str, int, int], int | None]  # title, label, value, highest: the number, None when dismissed
K = TypeVar("K", int, str)  # what the selection holds: job and task ids, worker ids


def confirm_box(parent: QWidget | None) -> Confirm:
    def confirm(title: str, text: str) -> bool:
        answer = QMessageBox.question(parent, title, as_html(text))
        return answer == QMessageBox.StandardButton.Yes

    return confirm


def ask_int_box(parent: QWidget | None) -> AskInt:
    def ask(title: str, label: str, value: int, highest: int) -> int | None:
        number, ok = QInputDialog.getInt(parent, title, as_html(label), min(value, highest), 0, highest)
        return number if ok else None

    return ask


class SelectionActions(QObject, Generic[K]):
    """QActions on what a table has selected: each runs on the selection (nothing when it is empty), asks
    `confirm` first where it stops work or cannot be undone, and says what it did through `done`. They are enabled
    when something is selected that `access` allows (`refusal` says why not); they follow a change of user."""

    done = Signal(str)  # a short line for the status bar
    reported = Signal(str, bool)  # the outcome of an action on many items, for the message bar; True: some refused

    def __init__(
        self,
        sync: FarmSync,
        selected: Callable[[], list[K]],
        parent: QWidget,
        confirm: Confirm | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(parent)
        self.sync = sync
        self.selected: Callable[[], list[K]] = selected
        self.confirm = confirm or confirm_box(parent)
        self.access = access or UserAccess(self)  # a user not known: everything offered, the Server decides
        self.access.changed.connect(self.update_enabled)
        self.all: list[QAction] = []

    def _action(self, text: str, name: str, run: Callable[[list[K]], None], shortcut: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut:
            action.setShortcut(shortcut)

        def triggered() -> None:
            ids = self.selected()
            if ids:
                run(ids)

        action.triggered.connect(triggered)
        self.all.append(action)
        return action

    def progress(self, verb: str, noun: str) -> Callable[[int, int], None]:
        return lambda done, total: self.done.emit(f"{verb} {noun}s: {done:,} of {total:,}…")

    def report(self, done_verb: str, noun: str, total: int, done: int, refused: list[tuple[K, str]]) -> None:
        """The outcome of an action on several items, in the message bar; on one, the status bar (its refusal
        came as an error already)."""
        text = bulk.outcome(done_verb, noun, total, done, refused)
        if total > 1:
            self.reported.emit(text[0].upper() + text[1:], bool(refused))
        self.done.emit(text[0].upper() + text[1:])

    def refusal(self, ids: list[K]) -> str:
        """Why the user may not act on these (an empty string when they may); subclasses apply the Server's rules."""
        return ""

    def update_enabled(self) -> None:
        ids = self.selected()
        why = self.refusal(ids) if ids else ""
        for a in self.all:
            show_refusal(a, bool(ids), why)


def show_refusal(action: QAction, selected: bool, why: str) -> None:
    """Enable `action` when something is selected and nothing refuses it; a refused one says why."""
    action.setEnabled(selected and not why)
    action.setToolTip(why)  # empty: Qt's default, the action's text
    action.setStatusTip(why)


class JobActions(SelectionActions[int]):
    """Toolbar and context-menu actions on the selected jobs; one job → its route, many → the bulk route."""

    def __init__(
        self,
        sync: FarmSync,
        selected: Callable[[], list[int]],
        parent: QWidget,
        confirm: Confirm | None = None,
        ask_int: AskInt | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(sync, selected, parent, confirm, access)
        self.ask_int = ask_int or ask_int_box(parent)
        self.pause = self._job_action("Pause", lambda ids: self._status(ids, JobAction.PAUSE), "Ctrl+P")
        self.resume = self._job_action("Resume", lambda ids: self._status(ids, JobAction.RESUME), "Ctrl+R")
        self.cancel = self._job_action("Cancel…", self._cancel)
        self.requeue = self._job_action("Requeue…", self._requeue)
        self.requeue_failed = self._job_action(
            "Requeue failed tasks", lambda ids: self._status(ids, JobAction.REQUEUE_FAILED)
        )
        self.priority = self._job_action("Change priority…", self._priority)
        self.delete = self._job_action("Delete…", self._delete, "Del")

    def refusal(self, ids: list[int]) -> str:
        jobs = self.sync.store.jobs
        return self.access.jobs_refusal((job.submitter if (job := jobs.get(i)) else None) for i in ids)

    def _job_action(self, text: str, run: Callable[[list[int]], None], shortcut: str = "") -> QAction:
        return self._action(text, "job-" + text.lower().rstrip("…").replace(" ", "-"), run, shortcut)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.sync.spawn(coro)

    def _status(self, ids: list[int], action: JobAction) -> None:
        self._spawn(self._send(ids, action=action))

    def _cancel(self, ids: list[int]) -> None:
        if self.confirm("Cancel jobs", f"Cancel {plural(len(ids), 'job')}? Running tasks are stopped."):
            self._status(ids, JobAction.CANCEL)

    def _requeue(self, ids: list[int]) -> None:
        if self.confirm("Requeue jobs", f"Requeue {plural(len(ids), 'job')}? Finished tasks run again."):
            self._status(ids, JobAction.REQUEUE)

    def _delete(self, ids: list[int]) -> None:
        if self.confirm("Delete jobs", f"Delete {plural(len(ids), 'job')} and their tasks for good?"):
            self._spawn(self._send(ids, delete=True))

    def _priority(self, ids: list[int]) -> None:
        jobs = self.sync.store.jobs
        job = jobs.get(ids[0])
        # what every selected job takes: past the role's cap a job may keep or lower its priority, never raise it
        known = [j.priority for i in ids if (j := jobs.get(i)) is not None]
        highest = self.access.highest_priority(min(known) if known else None)
        note = self.access.priority_note()
        label = f"Priority (0–{highest}, higher runs first):" + (f"\n{note}" if note else "")
        value = self.ask_int("Priority", label, job.priority if job else PRIORITY_DEFAULT, highest)
        if value is not None:
            self._spawn(self._send(ids, priority=value))

    async def _send(
        self, ids: list[int], action: JobAction | None = None, priority: int | None = None, delete: bool = False
    ) -> None:
        client = self.sync.client
        what = "deleted" if delete else (action.value if action else f"priority {priority}")
        if len(ids) == 1:
            if delete:
                await client.delete_job(ids[0])
            elif action is not None:
                await client.job_action(ids[0], action)
            elif priority is not None:
                await client.set_priority(ids[0], priority)
            self.done.emit(f"Job {ids[0]}: {what}")
            return
        results: list[BulkItemResult] = []
        for part in bulk.chunks(ids, BULK_MAX):  # the Server's bound on ids per request
            answer = await client.bulk(part, action=action, priority=priority, delete=delete)
            results.extend(answer.results)
            if len(ids) > BULK_MAX:
                self.done.emit(f"jobs: {len(results):,} of {len(ids):,}…")
        refused = [(r.id, r.error or "refused") for r in results if not r.ok]
        done_verb = "deleted" if delete else (JOB_DONE[action] if action else f"set priority {priority} of")
        self.report(done_verb, "job", len(ids), len(results) - len(refused), refused)


TASK_DONE = {"requeue": "requeued", "cancel": "canceled"}
JOB_DONE = {
    JobAction.PAUSE: "paused",
    JobAction.RESUME: "resumed",
    JobAction.CANCEL: "canceled",
    JobAction.REQUEUE: "requeued",
    JobAction.REQUEUE_FAILED: "requeued the failed tasks of",
}


class TaskActions(SelectionActions[int]):
    def __init__(
        self,
        sync: FarmSync,
        selected: Callable[[], list[int]],
        parent: QWidget,
        confirm: Confirm | None = None,
        access: UserAccess | None = None,
    ) -> None:
        super().__init__(sync, selected, parent, confirm, access)
        self.requeue = self._action("Requeue task", "task-requeue", lambda ids: self._run(ids, "requeue"))
        self.cancel = self._action("Cancel task…", "task-cancel", lambda ids: self._run(ids, "cancel"))

    def refusal(self, ids: list[int]) -> str:
        store = self.sync.store
        job_ids = {task.job_id if (task := store.tasks.get(i)) else store.selected_job_id for i in ids}
        return self.access.jobs_refusal(
            (job.submitter if j is not None and (job := store.jobs.get(j)) else None) for j in job_ids
        )

    def _run(self, ids: list[int], action: str) -> None:
        if action == "cancel" and not self.confirm("Cancel tasks", f"Cancel {plural(len(ids), 'task')}?"):
            return
        self.sync.spawn(self._send(ids, action))

    async def _send(self, ids: list[int], action: str) -> None:
        # the bulk route, BULK_MAX ids a request; at an older Server one request per task, a few at a time
        client = self.sync.client

        async def many(part: Sequence[int]) -> list[BulkItemResult]:
            return (await client.task_bulk(part, action)).results

        done, refused = await bulk.chunked(
            ids, BULK_MAX, many, lambda i: client.task_action(i, action), self.progress(f"{action}ing", "task")
        )
        self.report(TASK_DONE[action], "task", len(ids), done, refused)

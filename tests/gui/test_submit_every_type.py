"""The submission dialog submits a job of every job type the Server offers, with the job's own fields, and
shows the Server's field errors next to their fields (nested settings and scheduling fields included).

The types come from the Server's `/job-types`; each form is filled through its widgets from the schema alone
(a required setting takes its schema example, else a value of its kind), as a new job type would be."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.qt import QPushButton, Qt
from app.schema import FieldSpec
from app.ui.openjd_form import OpenJDForm
from app.ui.schema_form import SchemaForm
from app.ui.schema_nested import ObjectBox, ObjectList
from app.ui.submit_dialog import SubmitDialog
from services.protocol.jobs import JobAction
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.services import ROOT, ServerProcess

pytestmark = pytest.mark.timeout(180)
TEMPLATE = ROOT / "tests" / "support" / "openjd" / "several_steps.yaml"


def scalar_for(spec: FieldSpec, folder: Path) -> Any:
    """A value a user might type, in the form's terms, from the schema alone."""
    if spec.examples and not isinstance(spec.examples[0], dict):
        return spec.example
    if spec.kind == "enum":
        return spec.choices[0]
    if spec.kind in ("int", "float"):
        low = spec.minimum if spec.minimum is not None else spec.exclusive_minimum
        return (low or 0) + (1 if spec.exclusive_minimum is not None and spec.minimum is None else 0)
    if spec.kind == "path":
        return str(folder / spec.name)
    if spec.kind == "bool":
        return False
    if spec.kind == "json":
        return "{}" if spec.json_type == "object" else "[]"
    return "x" * max(spec.min_length or 1, 1)


def fill_required(qtbot, form: SchemaForm, folder: Path) -> dict[str, Any]:
    """Fill every required field that has no default; returns what was filled, by name."""
    filled: dict[str, Any] = {}
    for spec in form.specs:
        if not spec.required or spec.default is not None:
            continue
        editor = form.editors[spec.name]
        if isinstance(editor, ObjectList):
            items = []
            for _ in range(max(spec.min_items or 1, 1) - len(editor.forms)):
                qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)  # as a user adds an item
            for row in editor.forms:
                assert isinstance(row, SchemaForm)
                items.append(fill_required(qtbot, row, folder))
            filled[spec.name] = items
        elif isinstance(editor, ObjectBox):
            assert isinstance(editor.form, SchemaForm)
            filled[spec.name] = fill_required(qtbot, editor.form, folder)
        else:
            filled[spec.name] = scalar_for(spec, folder)
            form.set_value(spec.name, filled[spec.name])
    return filled


def contains(stored: Any, filled: Any) -> bool:
    """Whether what the Server stored holds what the form was given (types as the settings have them)."""
    if isinstance(filled, dict):
        return isinstance(stored, dict) and all(contains(stored.get(k), v) for k, v in filled.items())
    if isinstance(filled, list):
        return isinstance(stored, list) and len(stored) == len(filled) and all(map(contains, stored, filled))
    if isinstance(stored, list):  # a list of words typed as text
        return shlex.join(map(str, stored)) == str(filled)
    return str(stored) == str(filled) or stored == filled


async def open_dialog(client: ServerClient, qtbot, job_type: str) -> SubmitDialog:
    dialog = SubmitDialog(client)
    qtbot.addWidget(dialog)
    await dialog.load(preferred=job_type)
    await until(lambda: dialog.form_type == job_type and (dialog._pending is None or dialog._pending.done()))
    return dialog


def test_every_job_type_is_submitted_with_its_scheduling_fields(
    qloop, qtbot, fresh_server: ServerProcess, tmp_path: Path
) -> None:
    api = f"{fresh_server.url}/api/v1"
    h = fresh_server.headers()
    manager = httpx.post(f"{api}/managers", json={"name": "site-b"}, headers=h).json()
    earlier = httpx.post(f"{api}/jobs", json={"name": "earlier", "type": "exec", "settings": {"command": ["true"]}},
                         headers=h).json()  # fmt: skip
    offered = [t["name"] for t in httpx.get(f"{api}/job-types", headers=h).json()]
    assert len(offered) >= 6 and "blender-bake" in offered
    client = ServerClient(fresh_server.url, fresh_server.admin_token)
    accepted: dict[str, dict[str, Any]] = {}

    async def submit(job_type: str) -> None:
        dialog = await open_dialog(client, qtbot, job_type)
        form = dialog.form
        assert form is not None
        if isinstance(form, OpenJDForm):  # its settings are a template file and the template's parameters
            form.set_value("template", str(TEMPLATE))
            assert form.params is not None
            filled = {"parameters": fill_required(qtbot, form.params, tmp_path)}
        else:
            filled = fill_required(qtbot, form, tmp_path)
        dialog.name.setText(f"every type: {job_type}")
        fields = dialog.job_fields
        fields.tags.setText(f"t-{job_type}, shared")
        fields.depends_filter.setText("earlier")
        fields.set_depends_on([earlier["id"]])
        fields.manager.setCurrentIndex(fields.manager.findData(manager["id"]))
        fields.max_task_failures.setValue(5)
        fields.on_task_failure.setCurrentIndex(fields.on_task_failure.findData("continue"))
        qtbot.mouseClick(fields.start_paused, Qt.MouseButton.LeftButton)
        ok = dialog.buttons.findChildren(QPushButton)[0]
        assert ok.text() == "Submit"
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        await until(lambda: dialog.result() == 1 or "refused" in dialog.message.text(), within=30, what=job_type)
        assert dialog.result() == 1, f"{job_type}: {dialog.message.text()}"
        jobs = (await client.list_jobs(search=f"every type: {job_type}")).items
        assert len(jobs) == 1, jobs
        accepted[job_type] = {"job": jobs[0].model_dump(mode="json"), "filled": filled}

    async def scenario() -> None:
        for job_type in offered:
            await submit(job_type)
        await client.aclose()

    qloop.run_until_complete(scenario())
    assert sorted(accepted) == sorted(offered)
    for job_type, seen in accepted.items():
        job = seen["job"]
        assert job["type"] == job_type and job["status"] == "paused"
        assert job["tags"] == sorted([f"t-{job_type}", "shared"])
        assert job["depends_on"] == [earlier["id"]] and job["manager_id"] == manager["id"]
        assert job["max_task_failures"] == 5 and job["on_task_failure"] == "continue"
        assert job["tasks_total"] >= 1
        assert contains(job["settings"], seen["filled"]), (job_type, job["settings"], seen["filled"])
    bake = accepted["blender-bake"]["job"]["settings"]
    assert isinstance(bake["caches"], list) and isinstance(bake["caches"][0], dict), bake


def test_server_field_errors_land_next_to_nested_and_scheduling_fields(
    qloop, qtbot, fresh_server: ServerProcess
) -> None:
    api = f"{fresh_server.url}/api/v1"
    h = fresh_server.headers()
    doomed = httpx.post(f"{api}/jobs", json={"name": "doomed", "type": "exec", "settings": {"command": ["true"]}},
                        headers=h).json()  # fmt: skip
    client = ServerClient(fresh_server.url, fresh_server.admin_token)

    async def scenario() -> None:
        dialog = await open_dialog(client, qtbot, "blender-bake")
        form = dialog.form
        assert isinstance(form, SchemaForm)
        caches = form.editors["caches"]
        assert isinstance(caches, ObjectList)
        dialog.name.setText("bake")
        form.set_value("blendfile", "/p/scene.blend")
        # two caches; the second names a modifier without its object, which only the Server checks
        form.set_value("caches", [{"target": "fluid"}, {"target": "cloth", "modifier": "Cloth"}])
        assert len(caches.forms) == 2
        # the job it depends on is gone by the time the job is sent
        dialog.job_fields.set_depends_on([doomed["id"]])
        assert dialog.job_fields.depends_on() == [doomed["id"]]
        await client.job_action(doomed["id"], JobAction.CANCEL)
        await client.delete_job(doomed["id"])

        assert await dialog.send() is None
        second = caches.forms[1]
        assert isinstance(second, SchemaForm)
        assert "set `object` too" in second.errors["modifier"].text(), second.errors["modifier"].text()
        assert not second.errors["modifier"].isHidden()
        first = caches.forms[0]
        assert isinstance(first, SchemaForm) and first.errors["modifier"].isHidden()

        second.set_value("object", "Flag")
        assert await dialog.send() is None
        assert second.errors["modifier"].isHidden()
        assert f"no job with id {doomed['id']}" in dialog.job_fields.errors["depends_on"].text()

        # checked before sending: an item removed below the minimum, too many tags
        caches.remove_item(1)
        caches.remove_item(0)
        dialog.job_fields.tags.setText(" ".join(f"t{n}" for n in range(21)))
        assert await dialog.send() is None
        assert form.errors["caches"].text() == "is required"
        assert dialog.job_fields.errors["tags"].text() == "at most 20 tags"

        # a job's settings shown in the form (as Clone would) come back out unchanged
        caches_in = [{"target": "cloth", "object": "Flag"}, {"target": "fluid"}]
        job_settings = {"blendfile": "/p/b.blend", "caches": caches_in, "frame_start": 5, "frame_end": 9}
        form.fill(job_settings)
        assert len(caches.forms) == 2
        assert form.settings() == (job_settings, {})
        dialog.job_fields.fill({"tags": ["a", "b"], "max_task_failures": 7, "on_task_failure": "continue"})
        values, errors = dialog.job_fields.values()
        assert errors == {} and values["tags"] == ["a", "b"] and values["max_task_failures"] == 7
        assert values["on_task_failure"] == "continue" and values["depends_on"] == []
        await client.aclose()

    qloop.run_until_complete(scenario())

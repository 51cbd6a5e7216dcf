"""The farm policy at submission: roles per job type capability, output roots as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.protocol.states import Role
from services.server.jobtypes import registry
from services.server.jobtypes.registry import get_job_type
from services.server.policy import FarmPolicy, PolicyError, output_fields, under_roots
from services.server.store.errors import Forbidden, Invalid


def test_exec_is_for_wranglers_and_admins_by_default() -> None:
    policy, exec_type, render = FarmPolicy(), get_job_type("exec"), get_job_type("blender-render")
    assert exec_type is not None and render is not None
    with pytest.raises(Forbidden, match="'exec'"):
        policy.check_submission("exec", exec_type, {}, Role.ARTIST)
    policy.check_submission("exec", exec_type, {}, Role.WRANGLER)
    policy.check_submission("blender-render", render, {}, Role.ARTIST)


def test_the_farm_configures_roles_per_capability_and_job_type() -> None:
    raw = {"submit": {"program": ["wrangler", "admin"], "job_types": {"exec": ["admin"]}}}
    policy = FarmPolicy.from_dict(raw)
    exec_type, render = get_job_type("exec"), get_job_type("blender-render")
    assert exec_type is not None and render is not None
    with pytest.raises(Forbidden):
        policy.check_submission("exec", exec_type, {}, Role.WRANGLER)
    with pytest.raises(Forbidden):
        policy.check_submission("blender-render", render, {}, Role.ARTIST)
    with pytest.raises(PolicyError, match=r"submit\.job_types\.exec"):
        FarmPolicy.from_dict({"submit": {"job_types": {"exec": ["root"]}}})


def test_output_paths_are_checked_after_dot_dot_with_the_field_named() -> None:
    roots = ("{render_root}", "/srv/renders", "R:\\Renders")
    assert under_roots("{render_root}/shot/####", roots)
    assert under_roots("/srv/renders/a/../b.png", roots)
    assert under_roots("r:/renders/x.exr", roots)
    assert not under_roots("/srv/renders/../etc/x", roots)
    assert not under_roots("/srv/renders-other/x", roots)
    assert not under_roots("{render_root}/../x", roots)
    assert not under_roots("shot/x", roots)
    render = get_job_type("blender-render")
    assert render is not None
    assert set(output_fields(render)) == {"output_path", "preview_path"}
    with pytest.raises(Invalid) as caught:
        FarmPolicy(output_roots=roots).check_submission("blender-render", render, {"preview_path": "/tmp/p.mp4"},
                                                        Role.ARTIST)  # fmt: skip
    assert caught.value.field == "settings.preview_path"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[submit.job_types]\nExec = []\n", "'Exec' is not a known job type"),  # exec stayed on
        ('[submit.job_types]\nnope = ["admin"]\n', "'nope' is not a known job type"),
        ('[submit.job_types]\n"../x" = []\n', "'../x' is not a known job type"),
        ('[sumbit]\ncommand = ["admin"]\n', "'sumbit' is not a known table"),
        ('[submit]\ncomand = ["admin"]\n', "submit: 'comand' is not a known key"),
        ('[outputs]\nroot = ["/srv"]\n', "outputs: 'root' is not a known key"),
        ('submit = "admin"\n', "submit must be a table"),
        ('submit = ["admin"]\n', "submit must be a table"),
        ("outputs = 1\n", "outputs must be a table"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_a_policy_file_with_unknown_or_misshapen_keys_is_refused(text: str, named: str, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        FarmPolicy.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and named in message and "\n" not in message


def test_a_near_miss_is_suggested_and_a_plug_in_job_type_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PolicyError, match="did you mean 'exec'"):
        FarmPolicy.from_dict({"submit": {"job_types": {"Exec": []}}})

    class PlugIn:
        name = "studio-comp"

    monkeypatch.setattr(registry, "entry_points", lambda group: [PlugIn()])  # named, not loaded
    policy = FarmPolicy.from_dict({"submit": {"job_types": {"studio-comp": ["admin"]}}})
    assert policy.job_type_roles == {"studio-comp": frozenset({Role.ADMIN})}


def test_a_farm_caps_the_priority_a_role_may_give() -> None:
    policy = FarmPolicy.from_dict({"priority": {"artist": 60, "wrangler": 90}})
    policy.check_priority(60, Role.ARTIST)
    with pytest.raises(Forbidden, match=r"the artist role may give a job priority 60 at most \(asked: 61\)") as caught:
        policy.check_priority(61, Role.ARTIST)
    assert caught.value.field == "priority"
    with pytest.raises(Forbidden):
        policy.check_priority(95, Role.WRANGLER, current=90)
    policy.check_priority(100, Role.ADMIN)
    policy.check_priority(80, Role.ARTIST, current=90)  # lowering a job a wrangler raised
    policy.check_priority(90, Role.ARTIST, current=90)  # keeping it
    FarmPolicy().check_priority(100, Role.ARTIST)  # no cap by default


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[priority]\nartist = 101\n", "priority.artist must be a whole number from 0 to 100"),
        ("[priority]\nartist = -1\n", "priority.artist must be a whole number from 0 to 100"),
        ("[priority]\nartist = 60.5\n", "priority.artist must be a whole number"),
        ("[priority]\nartist = true\n", "priority.artist must be a whole number"),
        ("[priority]\nartists = 60\n", "'artists' is not a known role"),
        ("priority = 60\n", "priority must be a table"),
    ],
)
def test_a_misshapen_priority_table_stops_the_server_naming_it(text: str, named: str, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=re.escape(named)):
        FarmPolicy.load(path)

"""The farm policy at submission: roles per job type capability, output roots as text."""

from __future__ import annotations

import pytest

from services.protocol.states import Role
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

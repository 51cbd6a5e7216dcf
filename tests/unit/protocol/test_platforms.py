"""One vocabulary of platform names: what Python reports maps onto the names path variables are keyed by."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.manager.config import ManagerConfig
from services.protocol import platforms
from services.protocol.platforms import Platform
from services.protocol.worker_api import RegisterRequest, SignOnRequest


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("darwin", Platform.MACOS),  # sys.platform and platform.system().lower() on a Mac
        ("Darwin", Platform.MACOS),
        ("macos", Platform.MACOS),
        ("win32", Platform.WINDOWS),  # sys.platform on Windows
        ("Windows", Platform.WINDOWS),  # platform.system()
        ("linux", Platform.LINUX),
        ("Linux", Platform.LINUX),
    ],
)
def test_python_names_map_onto_the_farm_names(reported: str, expected: Platform) -> None:
    assert platforms.normalize(reported) is expected


@pytest.mark.parametrize("bad", ["", "amiga", "freebsd13"])
def test_unknown_platforms_are_refused_with_the_known_names(bad: str) -> None:
    with pytest.raises(ValueError, match="expected one of linux, windows, macos"):
        platforms.normalize(bad)


def test_wire_models_store_the_farm_name() -> None:
    req = SignOnRequest.model_validate({"name": "mac-01", "platform": "darwin", "task_types": ["blender"]})
    assert req.platform is Platform.MACOS
    assert req.model_dump(mode="json")["platform"] == "macos"
    register = {"registration_secret": "s", "name": "w", "platform": "Windows"}
    assert RegisterRequest.model_validate(register).platform is Platform.WINDOWS


def test_wire_models_refuse_unknown_platforms_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        SignOnRequest.model_validate({"name": "x", "platform": "amiga", "task_types": ["blender"]})
    assert info.value.errors()[0]["loc"] == ("platform",)


def test_a_macos_worker_gets_the_variables_keyed_macos(tmp_path: Path) -> None:
    cfg = ManagerConfig(server_url="http://x", token="t", data_dir=tmp_path)
    cfg.variables = {
        "render_root": {"linux": "/mnt/render", "macos": "/Volumes/render", "windows": "R:\\"},
        "projects": {"darwin": "/Volumes/projects", "linux": "/mnt/projects"},  # an admin's spelling
        "tools": {"all": "/opt/tools"},
    }
    for reported in ("macos", "darwin"):  # a worker of this version, and one of an older version
        got = cfg.resolved_variables(reported)
        assert got == {"render_root": "/Volumes/render", "projects": "/Volumes/projects", "tools": "/opt/tools"}
    assert cfg.resolved_variables("windows")["render_root"] == "R:\\"


def test_resolved_variables_follow_a_new_table_and_each_caller_gets_its_own_copy(tmp_path: Path) -> None:
    cfg = ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path)
    cfg.variables = {"projects": {"linux": "/mnt/projects", "windows": "P:\\"}}
    first = cfg.resolved_variables("linux")
    first["projects"] = "/changed/by/a/caller"
    assert cfg.resolved_variables("linux")["projects"] == "/mnt/projects"
    assert cfg.resolved_variables("windows")["projects"] == "P:\\"
    cfg.variables = {"projects": {"linux": "/srv/projects"}}  # the Manager's table replaced
    assert cfg.resolved_variables("linux")["projects"] == "/srv/projects"

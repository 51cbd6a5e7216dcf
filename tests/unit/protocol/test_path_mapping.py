"""Path mapping rules derived from the farm's path variables, for each worker platform."""

from __future__ import annotations

import pytest

from services.protocol.path_mapping import PathMapping, derive_path_mappings

TABLE = {
    "render_root": {"windows": "R:\\renders", "linux": "/mnt/renders", "darwin": "/Volumes/renders"},
    "projects": {"windows": "P:\\", "linux": "/mnt/projects"},
    "scratch": {"all": "/tmp/scratch"},
    "only_windows": {"windows": "W:\\x"},
}


def rule(fmt: str, source: str, destination: str) -> PathMapping:
    return PathMapping(source_format=fmt, source_path=source, destination_path=destination)


def test_a_linux_worker_maps_the_other_platforms_paths_to_its_own() -> None:
    assert derive_path_mappings(TABLE, "linux") == [
        rule("posix", "/Volumes/renders", "/mnt/renders"),
        rule("windows", "R:\\renders", "/mnt/renders"),
        rule("windows", "P:\\", "/mnt/projects"),
    ]


def test_a_windows_worker_gets_posix_sources() -> None:
    assert derive_path_mappings(TABLE, "win32") == [
        rule("posix", "/Volumes/renders", "R:\\renders"),
        rule("posix", "/mnt/projects", "P:\\"),
        rule("posix", "/mnt/renders", "R:\\renders"),
    ]


def test_no_rule_for_shared_values_or_unknown_platforms() -> None:
    same = {"v": {"linux": "/srv/x", "macos": "/srv/x"}, "w": {"all": "/a", "plan9": "/b"}}
    assert derive_path_mappings(same, "linux") == []
    with pytest.raises(ValueError, match="unknown platform"):
        derive_path_mappings(TABLE, "plan9")

"""Path variables in command parameters."""

from __future__ import annotations

from services.worker.variables import substitute


def test_replaces_known_names_recursively_and_leaves_other_braces():
    params = {
        "output": "{render_root}/job/frame_####",
        "args": ["-i", "{render_root}/{shot}/in.png", "{unknown}", "{}", "{ not a name }"],
        "nested": {"path": "{render_root}", "n": 3, "flag": True, "none": None},
        "python_expr": "d = {'a': 1}; print(f'{x}')",
        "{render_root}": "keys stay",
    }
    out = substitute(params, {"render_root": "/mnt/render", "shot": "sh010"})
    assert out == {
        "output": "/mnt/render/job/frame_####",
        "args": ["-i", "/mnt/render/sh010/in.png", "{unknown}", "{}", "{ not a name }"],
        "nested": {"path": "/mnt/render", "n": 3, "flag": True, "none": None},
        "python_expr": "d = {'a': 1}; print(f'{x}')",
        "{render_root}": "keys stay",
    }
    assert params["output"] == "{render_root}/job/frame_####"  # the input is not changed


def test_values_are_not_substituted_again():
    assert substitute("{a}", {"a": "{b}", "b": "no"}) == "{b}"


def test_windows_values_keep_their_backslashes():
    assert substitute("{root}\\shot", {"root": "R:\\render"}) == "R:\\render\\shot"


def test_no_variables_returns_the_same_object():
    params = {"a": "{x}"}
    assert substitute(params, {}) is params

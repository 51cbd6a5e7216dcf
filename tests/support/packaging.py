"""The build scripts under packaging/ are not a package: tests load one by its file name."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support.services import ROOT


def load_packaging(name: str) -> ModuleType:
    """packaging/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""PyInstaller runtime hook: a stand-in for PySide6.QtOpenGL, which the bundle leaves out.

PySide6's QtOpenGL bindings are 8.9 MB, mostly OpenGL's function tables for every version. pyqtgraph imports the
module when it starts, but uses it only to draw curves with OpenGL (`enableExperimental` with an OpenGL view),
which Tablao never turns on: its graphs are drawn by QPainter. The stand-in lets the import succeed; any use of it
fails with a message that says why. tests/unit/packaging/test_no_qtopengl.py draws pyqtgraph's plots with it.
"""

import sys
import types


class _LeftOut(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        raise AttributeError(f"PySide6.QtOpenGL.{name}: OpenGL drawing is left out of the Tablao bundle")


sys.modules.setdefault("PySide6.QtOpenGL", _LeftOut("PySide6.QtOpenGL"))

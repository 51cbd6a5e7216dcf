"""pyqtgraph draws Tablao's kind of graphs with the bundle's stand-in for PySide6.QtOpenGL (rth_no_qtopengl.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.services import ROOT

pytestmark = [pytest.mark.gui]

PROBE = """
import runpy, sys
runpy.run_path(sys.argv[1])
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication
app = QApplication([])
plot = pg.PlotWidget()
plot.resize(200, 120)
plot.setBackground("w")
plot.plot([0, 1, 2, 3], [0, 3, 1, 2], pen=pg.mkPen((255, 0, 0), width=3))
plot.plot([0, 3], [1, 1], fillLevel=0, brush=(0, 0, 255, 80))
plot.show()
app.processEvents()
image = plot.grab().toImage()
red = sum(1 for x in range(image.width()) for y in range(image.height())
          if image.pixelColor(x, y).red() > 200 and image.pixelColor(x, y).green() < 80)
stand_in = sys.modules["PySide6.QtOpenGL"]
try:
    stand_in.QOpenGLBuffer
except AttributeError as error:
    message = str(error)
loaded = [line for line in open("/proc/self/maps") if "QtOpenGL.abi3" in line]
print(red, type(stand_in).__name__, bool(loaded), message)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the stand-in is for the Linux bundle")
def test_pyqtgraph_draws_without_qtopengl() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "packaging" / "rth_no_qtopengl.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    red, kind, loaded, message = done.stdout.split(maxsplit=3)
    assert int(red) > 50, "the red curve was not drawn"
    assert kind == "_LeftOut" and loaded == "False"
    assert "left out of the Tablao bundle" in message

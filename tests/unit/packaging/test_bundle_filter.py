"""What the bundle leaves out, and the Windows version resource of its programs."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from tests.support.packaging import load_packaging


@pytest.fixture(scope="module")
def bundle_filter() -> ModuleType:
    return load_packaging("bundle_filter")


@pytest.mark.parametrize(
    "dest",
    [
        "PySide6/Qt/translations/qtbase_de.qm",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
        "PySide6/Qt/plugins/platforms/libqvnc.so",
        "PySide6/Qt/plugins/imageformats/libqtiff.so",
        "pyqtgraph/icons/peegee/peegee_512px@2x.png",
        "fastapi_offline/static/redoc.standalone.js",
        "libgtk-3.so.0",
        "libcairo.so.2",
        "libharfbuzz.so.0",
        "numpy/__init__.pyi",
        "x/__pycache__/y.cpython-311.pyc",
        "PySide6\\Qt\\translations\\qt_fr.qm",
    ],
)
def test_dropped(bundle_filter: ModuleType, dest: str) -> None:
    assert bundle_filter.dropped(dest)


@pytest.mark.parametrize(
    "dest",
    [
        "PySide6/Qt/lib/libQt6Core.so.6",
        "PySide6/Qt/lib/libicudata.so.73",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so",
        "PySide6/Qt/plugins/imageformats/libqsvg.so",
        "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "pyqtgraph/icons/auto.png",  # the plots' auto-range button
        "fastapi_offline/static/swagger-ui-bundle.js",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "pillow.libs/libharfbuzz-fb49c9fc.so.0.61450.0",  # Pillow's own copy, which its font code needs
        "libfontconfig.so.1",
        "libglib-2.0.so.0",
        "services/server/db/migrations/env.py",
        "resources/icons/tablao.png",
    ],
)
def test_kept(bundle_filter: ModuleType, dest: str) -> None:
    assert not bundle_filter.dropped(dest)


def test_keep_filters_a_toc(bundle_filter: ModuleType) -> None:
    toc = [("libcairo.so.2", "/usr/lib/libcairo.so.2", "BINARY"), ("libz.so.1", "/usr/lib/libz.so.1", "BINARY")]
    assert bundle_filter.keep(toc) == [toc[1]]


def test_windows_version_resource(bundle_filter: ModuleType) -> None:
    if sys.platform != "win32":
        pytest.skip("PyInstaller's version-resource module loads only on Windows (pywin32, pefile)")
    info = bundle_filter.windows_version_info("1.2.3", "tablao-tray", "Tablao tray agent")
    assert info.ffi.fileVersionMS == (1 << 16) | 2 and info.ffi.fileVersionLS == 3 << 16
    text = str(info)
    for expected in ("'FileDescription', 'Tablao tray agent'", "'OriginalFilename', 'tablao-tray.exe'", "1.2.3"):
        assert expected in text

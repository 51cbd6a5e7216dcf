"""PyInstaller runtime hook for PySide6, in place of PyInstaller's own: Qt's paths, without loading Qt.

PyInstaller's hook for PySide6 imports `PySide6.QtCore` when any program of the bundle starts, to register an
embedded qt.conf where the bindings make none. PySide6's wheels make one themselves when QtCore loads, so in
Tablao's bundle that import only loaded Qt Core and ICU (about 0.2 s and 14 MB) into every headless Server, Manager,
Worker and `tablao` command, which import no Qt. This hook sets what PyInstaller's sets for a bundle like ours (where
Qt finds its plugins; on Windows and macOS, the bundle's folder for the OpenSSL that Qt's network module looks for)
and leaves loading Qt to the programs that use it. packaging/pyinstaller_hooks/rthooks.dat puts it in place of
PyInstaller's (a hook directory listed first wins); tests/e2e/test_bundle.py checks that a headless farm from the
bundle loads no Qt library and that the desktop app and the tray still start.
"""


def _qt_paths() -> None:
    import os
    import sys
    from pathlib import Path

    from _pyi_rth_utils import is_macos_app_bundle, prepend_path_to_environment_variable
    from _pyi_rth_utils import qt as qt_rth_utils

    qt_rth_utils.ensure_single_qt_bindings_package("PySide6")
    base = sys._MEIPASS  # type: ignore[attr-defined]
    qt = Path(base, "PySide6") if sys.platform == "win32" else Path(base, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = str(qt / "plugins")
    if sys.platform == "win32" or (sys.platform == "darwin" and not is_macos_app_bundle):
        prepend_path_to_environment_variable(base, "PATH" if sys.platform == "win32" else "DYLD_LIBRARY_PATH")


_qt_paths()
del _qt_paths

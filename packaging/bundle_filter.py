"""What the PyInstaller bundle leaves out, and the Windows version resource of its programs (used by tablao.spec).

Kept out: Python packages that only development pulls in, Qt modules and plugins Tablao never loads, Qt's
translations (the app is in English only) and the GTK stack that only Qt's GTK theme plugin needs (that plugin is
dropped: the app draws its own widgets, and its file dialogs fall back to Qt's own). tests/e2e/test_bundle.py
checks that no bundled library still needs a library dropped here, and that the bundle keeps every feature.
"""

from __future__ import annotations

import filecmp
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXCLUDES = [
    # development and test tools some dependencies import optionally
    "tkinter",
    "_tkinter",
    "mypy",
    "mypyc",
    "ast_serialize",
    "hypothesis",
    "pytest",
    "_pytest",
    "setuptools",
    "pkg_resources",
    "pip",
    "IPython",
    "numpy.f2py",
    "numpy.distutils",
    "lib2to3",
    "pydoc_data",
    # httpx's own command line (its imports are optional: `httpx.main` then says what is missing)
    "rich",
    "pygments",
    "markdown_it",
    "mdurl",
    # uvicorn's --reload, which Tablao does not use (YAML stays: Open Job Description templates are YAML)
    "watchfiles",
    # websockets' optional URL router (uvicorn serves websockets without it)
    "werkzeug",
    # Pillow pieces no job type reads or writes
    "PIL.ImageTk",
    "PIL.ImageQt",
    "PIL.AvifImagePlugin",
    "PIL._avif",
    # Qt modules Tablao never imports (QtSvg draws SVG theme icons). pyqtgraph imports QtOpenGL but uses it only to
    # draw with OpenGL, which Tablao never turns on: packaging/rth_no_qtopengl.py stands in for it (8.9 MB)
    "PySide6.QtOpenGL",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtWebEngineCore",
    "PySide6.QtTest",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtPrintSupport",
    "PySide6.QtSql",
    "PySide6.QtXml",
    "PySide6.QtConcurrent",
    "PySide6.QtNetworkAuth",
    "pyqtgraph.opengl",
    "pyqtgraph.examples",
    "pyqtgraph.jupyter",
    "pyqtgraph.flowchart",
    "pyqtgraph.canvas",
    "pyqtgraph.console",
    # SQLAlchemy's dialects for databases Tablao does not support (it stores in SQLite or PostgreSQL)
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.dialects.mssql",
    "sqlalchemy.dialects.oracle",
    # keyring's Secret Service backend needs only AES-CBC of it, which packaging/rth_secret_service_cipher.py gives
    # from the bundle's OpenSSL on Linux (12 MB); keyring's Windows and macOS backends do not use it at all
    "cryptography",
    "cffi",
    "_cffi_backend",
    # numpy's random numbers (2.5 MB): pyqtgraph uses them only to scatter a beeswarm plot, which Tablao never draws
    "numpy.random",
    # line editing for interactive prompts (pdb, the REPL): Tablao's commands read no interactive input
    "readline",
]

# Libraries the bundle takes from the system, as it takes OpenGL and EGL: the D-Bus client library, which Qt's D-Bus
# module links and every Linux desktop has (the desktop app and the tray run in a desktop session; the headless
# services load no Qt), and what Debian's build of it links (systemd's library, libgcrypt, ...): 2.9 MB.
# scripts/system-deps.sh installs it with Qt's X11 libraries for `make run`.
FROM_THE_SYSTEM = [r"^lib(dbus-1|systemd|gcrypt|gpg-error|lz4|cap)\.so"]
_FROM_THE_SYSTEM = re.compile("|".join(FROM_THE_SYSTEM))

# Destination paths in the bundle that are dropped after the analysis (regular expressions, "/" separators).
DROPPED = [
    r"PySide6/Qt/translations/",
    r"PySide6/Qt/plugins/platformthemes/libqgtk3\.",
    r"PySide6/Qt/plugins/(egldeviceintegrations|generic)/",  # embedded-Linux input and KMS output
    r"PySide6/Qt/plugins/platforms/libq(eglfs|minimalegl|vkkhrdisplay)\.",  # full-screen embedded platforms
    r"PySide6/Qt/plugins/platforms/libq(linuxfb|vnc)\.",  # framebuffer devices and a VNC server as the screen
    # Qt's network reachability and TLS back-ends: the app talks HTTP through httpx, and uses Qt's network module
    # only for the local socket that keeps one instance of it (no QNetworkInformation, no QSslSocket)
    r"PySide6/Qt/plugins/(networkinformation|tls)/",
    # GIO and what it loads, needed only by the GLib network-reachability plugin dropped above
    r"^lib(gio-2\.0|gobject-2\.0|gmodule-2\.0|mount|blkid|selinux)\.so",
    # numpy's test extension
    r"numpy/_core/_multiarray_tests\.",
    # TIFF and WebP images: the app shows the workers' JPEG previews and its own PNG and SVG icons only
    r"PySide6/Qt/plugins/imageformats/libq(tiff|webp)\.",
    r"PySide6/Qt/lib/libQt6(EglFSDeviceIntegration|EglFsKmsSupport|Test|Qml\w*|Quick\w*)\.",
    r"(^|/)libQt6(EglFSDeviceIntegration|EglFsKmsSupport|Test)\.",
    # the GTK stack, loaded only by the GTK theme plugin dropped above
    r"^lib(gtk-3|gdk-3|gdk_pixbuf-2\.0|atk-1\.0|atk-bridge-2\.0|cairo|cairo-gobject|pango-1\.0|pangocairo-1\.0"
    r"|pangoft2-1\.0|harfbuzz|fribidi|thai|datrie|graphite2|pixman-1|epoxy|atspi|Xcomposite|Xcursor|Xdamage"
    r"|Xinerama|Xrandr)\.so",
    # pyqtgraph's logo in eight sizes, set only by its own pg.mkQApp (Tablao makes its QApplication itself)
    r"pyqtgraph/icons/peegee/",
    # the ReDoc page's script: the Server and Manager serve Swagger UI only (redoc_url=None)
    r"fastapi_offline/static/redoc\.",
    *FROM_THE_SYSTEM,
    # caches and type stubs some packages ship
    r"(^|/)__pycache__/",
    r"\.pyi$",
]
_DROPPED = re.compile("|".join(f"(?:{pattern})" for pattern in DROPPED))


def dropped(dest: str) -> bool:
    return _DROPPED.search(dest.replace("\\", "/")) is not None


def from_the_system(name: str) -> bool:
    """Whether a library the bundle leaves out is one it expects the system to have."""
    return _FROM_THE_SYSTEM.search(name) is not None


def keep(toc: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The TOC entries (destination, source, type) that stay in the bundle."""
    return [entry for entry in toc if not dropped(entry[0])]


def windows_version_info(version: str, name: str, description: str) -> Any:
    """The version resource Windows shows in a program's properties and the installer's file list."""
    from PyInstaller.utils.win32 import versioninfo as vi

    numbers = [int(n) for n in re.findall(r"\d+", version)[:4]]
    numbers += [0] * (4 - len(numbers))
    strings = {
        "CompanyName": "Tablao",
        "FileDescription": description,
        "FileVersion": version,
        "InternalName": name,
        "LegalCopyright": "GPL-3.0-or-later",
        "OriginalFilename": f"{name}.exe",
        "ProductName": "Tablao",
        "ProductVersion": version,
    }
    return vi.VSVersionInfo(
        ffi=vi.FixedFileInfo(filevers=tuple(numbers), prodvers=tuple(numbers)),
        kids=[
            vi.StringFileInfo([vi.StringTable("040904B0", [vi.StringStruct(k, v) for k, v in strings.items()])]),
            vi.VarFileInfo([vi.VarStruct("Translation", [0x0409, 1200])]),
        ],
    )


def share_archives(folder: Path, main: str, others: list[str]) -> None:
    """Replace the other programs' archives (NAME.pkg) by links to the main one's, where they are the same bytes."""
    archive = folder / f"{main}.pkg"
    for name in others:
        copy = folder / f"{name}.pkg"
        if not filecmp.cmp(archive, copy, shallow=False):
            raise SystemExit(f"bundle_filter: {copy} differs from {archive}; cannot share it")
        copy.unlink()
        copy.symlink_to(archive.name)


def strip_libraries(folder: Path) -> None:
    """Strip debug symbols from the bundle's ELF libraries (a fifth of its size), except wheels' vendored ones.

    Libraries auditwheel vendored into `NAME.libs/` were rewritten by patchelf; `strip` breaks their layout
    (numpy's OpenBLAS then fails to load: "ELF load command address/offset not page-aligned"), so they stay as they
    are. PyInstaller's own `strip=True` cannot leave them out, hence this step after COLLECT.
    """
    libraries = [
        str(path)
        for path in folder.rglob("*.so*")
        if path.is_file() and not path.is_symlink() and not any(part.endswith(".libs") for part in path.parts)
    ]
    for start in range(0, len(libraries), 200):
        subprocess.run(["strip", "--strip-unneeded", *libraries[start : start + 200]], check=True)

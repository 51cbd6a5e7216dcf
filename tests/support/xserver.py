"""A real X server for tests: Xvfb on a free display number, optionally a window manager and a tray host."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType


def _free_display() -> int:
    for n in range(90, 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


class XServer:
    """Xvfb (-nolisten tcp: reachable through its Unix socket only); `with_tray` adds openbox and trayer."""

    def __init__(self, tmp: Path, *, with_tray: bool = False) -> None:
        self.tmp = tmp
        self.with_tray = with_tray
        self.procs: list[subprocess.Popen[bytes]] = []
        self.display = ""
        self.env: dict[str, str] = {}

    def __enter__(self) -> XServer:
        for attempt in range(5):
            n = _free_display()
            self.display = f":{n}"
            with open(self.tmp / f"xvfb{n}.log", "wb") as log:
                xvfb = subprocess.Popen(
                    ["Xvfb", self.display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stdout=log, stderr=log
                )
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and xvfb.poll() is None:
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    break
                time.sleep(0.05)
            if xvfb.poll() is None:
                self.procs.append(xvfb)
                break
            if attempt == 4:
                raise RuntimeError(f"Xvfb did not start: {(self.tmp / f'xvfb{n}.log').read_text()}")
        self.env = {**os.environ, "DISPLAY": self.display}
        self.env.pop("WAYLAND_DISPLAY", None)
        self.env.pop("QT_QPA_PLATFORM", None)
        if self.with_tray:
            self._start(["openbox"], "openbox")
            time.sleep(0.5)
            self._start(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24",
                 "--SetDockType", "true", "--transparent", "false"],
                "trayer",
            )  # fmt: skip
            time.sleep(0.5)
        return self

    def _start(self, argv: list[str], name: str) -> None:
        if shutil.which(argv[0]) is None:
            raise RuntimeError(f"{argv[0]} is not installed")
        with open(self.tmp / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=log))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

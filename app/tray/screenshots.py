"""Screenshots of the tray for the README (`make screenshots`): its menu while rendering, the hours dialog.

Offscreen: the menu and dialogs are real widgets rendered with `grab()`; the worker's state is a report as
the worker sends it over the control channel, so no farm is needed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from app.qt import QApplication, QWidget


def grab(widget: QWidget, path: Path) -> None:
    widget.adjustSize()
    QApplication.processEvents()
    widget.grab().save(str(path))
    print(f"wrote {path}")


class _Reported:
    """Stands in for the worker process: running, and deaf to commands."""

    running = True

    def send(self, command: dict[str, object]) -> None:
        pass


def shoot(out: Path) -> int:
    from app.tray.app import TrayApp
    from app.tray.autostart import XdgAutostart
    from app.tray.dialogs import HoursDialog
    from app.tray.hours import RenderingHours
    from app.tray.idle import Detection, FakeIdle
    from app.tray.settings import TraySettings

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tablao-tray-shots-"))
    settings = TraySettings(manager_url="http://manager.studio.lan:8081", worker_name="anna-ws", away_only=True)
    away = FakeIdle(lambda: 3600.0)
    away.last_input = 0.0  # the artist left an hour ago
    tray = TrayApp(settings, data_dir=tmp, idle=Detection(away, []),
                   autostart=XdgAutostart(tmp), save_settings=False)  # fmt: skip
    tray.child = _Reported()  # type: ignore[assignment]  # no process: the state is given below
    tray.info = {"status": "awake", "reachable": True, "paused": False,
                 "task": {"id": 412, "name": "frames 41-50", "job_id": 17, "job_name": "shot-030 lighting",
                          "steps_done": 6, "steps_total": 10}}  # fmt: skip
    tray.settings.away_minutes = 10
    tray.tick()
    grab(tray.menu, out / "tray-menu.png")
    dialog = HoursDialog(RenderingHours.after_hours())
    dialog.days[2].setText("19:00-08:00, 12:30-13:30")
    grab(dialog, out / "tray-rendering-hours.png")
    return 0


def main(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert app is not None
    return shoot(Path(argv[0]) if argv else Path("docs/screenshots"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

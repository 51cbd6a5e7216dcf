"""Renders the Administration dialog's tabs over a real Server into PNGs (`make screenshots` → docs/screenshots/)."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.qt import QApplication, QWidget
from services.local_ports import free_ports
from services.localfarm.supervisor import tablao_argv
from services.protocol.admin import WebhookEvent
from services.protocol.server_client import ServerClient
from services.protocol.states import Role


def grab(widget: QWidget, path: Path) -> None:
    QApplication.processEvents()
    widget.grab().save(str(path))
    print(f"wrote {path}")


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            try:
                if (await http.get(f"{url}/api/v1/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the Server at {url} did not start")


async def shoot(out: Path) -> int:
    from app.ui.admin import AdminDialog
    from app.ui.admin.common import spawner

    data = Path(tempfile.mkdtemp(prefix="tablao-admin-shots-"))
    port = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: ASYNC220 - once, before the loop has other work
        tablao_argv("server", "--data-dir", str(data), "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_up(url)
        token = (data / "admin.token").read_text().strip()
        client = ServerClient(url, token)
        dialog = AdminDialog(client, spawner(asyncio.ensure_future), lambda _t, _x: True)
        for name, role in (("ana", Role.ARTIST), ("bruno", Role.ARTIST), ("carmen", Role.WRANGLER)):
            await dialog.users.add(name, role, f"{name}-password")
        await dialog.users.change(dialog.users.keys[1], disabled=True)
        for user, name in (("ana", "laptop"), ("carmen", "blender add-on")):
            await dialog.tokens.create_token(user, name, 90 if user == "ana" else None)
        await dialog.managers.add("room-2")
        await dialog.managers.add("render-room")
        await dialog.webhooks.add("studio chat", "https://chat.example.com/hooks/tablao", [WebhookEvent.JOB_FAILED])
        await dialog.webhooks.add(
            "production tracker",
            "https://tracker.example.com/api/render-events",
            [WebhookEvent.JOB_COMPLETED, WebhookEvent.JOB_FAILED],
        )
        out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once
        shown = dialog.managers.shown[-1]
        dialog.show()
        await dialog.refresh_all()
        for index, name in enumerate(("users", "tokens", "managers", "webhooks")):
            dialog.tabs.setCurrentIndex(index)
            await asyncio.sleep(0.3)
            grab(dialog, out / f"admin-{name}.png")
        grab(shown, out / "admin-manager-token.png")
        for s in [*dialog.tokens.shown, *dialog.managers.shown, *dialog.webhooks.shown]:
            s.close()
        dialog.close()
        await client.aclose()
    finally:
        server.terminate()
        server.wait(15)
    return 0


def main(argv: list[str]) -> int:
    import qasync

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(argv[0]) if argv else Path("docs/screenshots")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    faulthandler.dump_traceback_later(240, exit=True)  # never block `make` on a hang
    t0 = time.monotonic()
    with loop:
        code = int(loop.run_until_complete(shoot(out)))
    print(f"admin screenshots done in {time.monotonic() - t0:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The desktop app's "Install the Blender add-on": real Blender installs and enables the zip in its user prefs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.models.store import ClientStore
from app.models.sync import FarmSync
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.farm import need_programs
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(240)


def window_for(server: ServerProcess, qtbot) -> MainWindow:
    sync = FarmSync(ClientStore(), ServerClient(server.url, server.admin_token))
    window = MainWindow(sync, server.admin_token, confirm=lambda title, text: True)
    qtbot.addWidget(window)
    return window


def test_install_action_enables_the_addon_in_blender(
    qloop, qtbot, fresh_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_programs("blender")
    # Blender keeps add-ons and prefs here instead of the real home
    monkeypatch.setenv("BLENDER_USER_SCRIPTS", str(tmp_path / "scripts"))
    monkeypatch.setenv("BLENDER_USER_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("TABLAO_BLENDER", "blender")
    window = window_for(fresh_server, qtbot)

    async def scenario() -> None:
        window.install_addon_action.trigger()
        await until(lambda: window.last_addon_install is not None, within=180, what="the install")

    qloop.run_until_complete(scenario())
    result = window.last_addon_install
    assert result is not None and result.ok, result
    assert (tmp_path / "scripts" / "addons" / "tablao_submit" / "__init__.py").is_file()
    # a new Blender session starts with the add-on enabled: it was saved in the user preferences
    check = subprocess.run(
        ["blender", "-b", "--python-expr",
         "import addon_utils; print('ENABLED', addon_utils.check('tablao_submit')[1])"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "ENABLED True" in check.stdout, check.stdout[-2000:]


def test_install_without_blender_says_so(
    qloop, qtbot, fresh_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLAO_BLENDER", str(tmp_path / "no-blender"))
    window = window_for(fresh_server, qtbot)

    async def scenario() -> None:
        window.install_addon_action.trigger()
        await until(lambda: window.last_addon_install is not None, what="the answer")

    qloop.run_until_complete(scenario())
    assert window.last_addon_install is not None and not window.last_addon_install.ok
    assert "Blender not found" in window.message_bar.label.text()

"""The bundle's programs map to `tablao` commands by their names, and farm children pass straight through."""

from __future__ import annotations

import pytest

from app.launcher import program_argv


@pytest.mark.parametrize(
    ("program", "args", "expected"),
    [
        ("/opt/tablao/tablao", [], []),
        ("/opt/tablao/tablao", ["jobs"], ["jobs"]),
        ("/opt/tablao/tablao-desktop", [], ["desktop"]),
        ("/opt/tablao/tablao-desktop", ["--embedded", "--workers", "2"], ["desktop", "--embedded", "--workers", "2"]),
        (r"C:\Program Files\Tablao\TABLAO-DESKTOP.EXE", [], ["desktop"]),
        ("/opt/tablao/tablao-tray", [], ["tray"]),
        ("/opt/tablao/tablao-tray", ["--manager", "http://m:8471"], ["tray", "--manager", "http://m:8471"]),
        ("/opt/tablao/tablao-tray", ["worker", "--name", "w"], ["worker", "--name", "w"]),
        ("/opt/tablao/tablao-tray", ["tray", "--manager", "u"], ["tray", "--manager", "u"]),
        ("/opt/tablao/tablao-desktop", ["tray"], ["tray"]),
        ("/opt/tablao/tablao-desktop", ["server", "--port", "9"], ["server", "--port", "9"]),
        ("/Applications/Tablao.app/Contents/MacOS/tablao-desktop", ["manager"], ["manager"]),
        # a desktop's URL handler (Linux %u, Windows "%1"): `tablao` opens the app on the link's job
        ("/opt/tablao/tablao-desktop", ["tablao://job/42"], ["tablao://job/42"]),
        (r"C:\Program Files\Tablao\tablao-desktop.exe", ["TABLAO://job/7/"], ["TABLAO://job/7/"]),
    ],
)
def test_program_argv(program: str, args: list[str], expected: list[str]) -> None:
    assert program_argv(program, args) == expected

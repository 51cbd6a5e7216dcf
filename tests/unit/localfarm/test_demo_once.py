"""`make run` passes --demo at every start: the demo renders at a farm's first start, not again at each later one
(a newcomer's job list filled with copies of it); `tablao demo` still renders it on request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.localfarm import cli
from services.localfarm.demo_run import demo_output_dir, rendered_before


def test_a_demo_rendered_at_an_earlier_start_is_not_submitted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rendered_before(tmp_path / "demo") is None
    video = demo_output_dir(tmp_path / "demo") / "preview.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\0" * 16)
    assert rendered_before(tmp_path / "demo") == video

    def submitted(*_: Any) -> None:
        raise AssertionError("the demo was submitted again")

    monkeypatch.setattr("services.localfarm.demo_run.DemoRun.submit", submitted)
    farm = SimpleNamespace(server_url="http://127.0.0.1:9", admin_token_file=tmp_path / "none")
    asyncio.run(cli._demo(farm, tmp_path))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert f"The demo rendered at an earlier start: {video}" in out and "demo` renders it again" in out

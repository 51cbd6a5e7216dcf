"""`make run` passes --demo at every start: the demo renders at a farm's first start, not again at each later one
(a newcomer's job list filled with copies of it); `tablao demo` still renders it on request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from services.localfarm import cli, demo_run
from services.localfarm.demo_run import demo_output_dir, rendered_before


def test_a_demo_rendered_at_an_earlier_start_is_not_submitted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rendered_before(tmp_path / "demo") is None
    # rendered at a start a while ago: the folder's name has that start's time, not this one's
    older, newer = tmp_path / "demo" / "render-20261201-090000", tmp_path / "demo" / "render-20261203-181500"
    for run in (older, newer):
        run.mkdir(parents=True)
    assert demo_output_dir(tmp_path / "demo") not in (older, newer)
    assert rendered_before(tmp_path / "demo") == newer  # submitted, still rendering: where its frames go
    video = newer / "preview.mp4"
    video.write_bytes(b"\0" * 16)
    assert rendered_before(tmp_path / "demo") == video

    def submitted(*_: Any) -> None:
        raise AssertionError("the demo was submitted again")

    monkeypatch.setattr("services.localfarm.demo_run.DemoRun.submit", submitted)
    farm = SimpleNamespace(server_url="http://127.0.0.1:9", admin_token_file=tmp_path / "none")
    asyncio.run(cli._demo(farm, tmp_path))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert f"The demo rendered at an earlier start: {video}" in out and "demo` renders it again" in out


def test_a_demo_submitted_and_not_yet_rendered_is_not_submitted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The farm stopped before the demo's first frame: the job renders on at the next start, once."""
    monkeypatch.setattr("services.localfarm.demo_run.shutil.which", lambda _name: "/usr/bin/blender")
    monkeypatch.setattr(demo_run, "make_demo_scene", lambda work, *_: work / "sample.blend")
    monkeypatch.setattr("services.localfarm.demo_run.httpx.post", lambda *_a, **_k: httpx.Response(201, json={"id": 7}))
    run = demo_run.DemoRun("http://127.0.0.1:9", "t", tmp_path / "demo")
    assert run.submit() == 7
    assert rendered_before(tmp_path / "demo") == run.out_dir

    def submitted(*_: Any) -> None:
        raise AssertionError("the demo was submitted again")

    monkeypatch.setattr("services.localfarm.demo_run.DemoRun.submit", submitted)
    farm = SimpleNamespace(server_url="http://127.0.0.1:9", admin_token_file=tmp_path / "none")
    asyncio.run(cli._demo(farm, tmp_path))  # type: ignore[arg-type]
    assert f"The demo was submitted at an earlier start; its frames go to {run.out_dir}" in capsys.readouterr().out

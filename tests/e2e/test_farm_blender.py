"""The whole farm on one machine rendering real Blender jobs, with ffmpeg previews, and surviving faults."""

from __future__ import annotations

import io
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from resources.scenes import make_sample_scene, make_simulation_scene
from services.localfarm.supervisor import Child
from tests.support.farm import FarmClient, local_farm, need_programs
from tests.support.services import ROOT, child_env, tablao_command

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_programs("blender", "ffmpeg", "ffprobe")
    return make_sample_scene(tmp_path_factory.mktemp("scene") / "sample.blend", frames=8, size=(64, 36), samples=1)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, scene: Path) -> Iterator[FarmClient]:
    with local_farm(tmp_path_factory.mktemp("farm"), workers=2) as f:
        yield f


def render_job(scene: Path, out: Path, frames: str = "1-8", chunk: int = 2, preview: bool = True) -> dict[str, object]:
    return {
        "name": f"render {out.name}",
        "type": "blender-render",
        "settings": {
            "blendfile": str(scene),
            "frames": frames,
            "chunk_size": chunk,
            "output_path": str(out / "frame_####"),
            "format": "PNG",
            "fps": 8,
            "preview_video": preview,
            "preview_path": str(out / "preview.mp4"),
        },
    }


def ffprobe_frames(video: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "json", str(video)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def test_render_with_preview_video(farm: FarmClient, scene: Path, tmp_path: Path) -> None:
    job = farm.submit(render_job(scene, tmp_path / "out"))
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    frames = sorted((tmp_path / "out").glob("frame_*.png"))
    assert [f.name for f in frames] == [f"frame_{i:04d}.png" for i in range(1, 9)]
    with Image.open(frames[0]) as first:
        assert first.size == (64, 36)
    assert ffprobe_frames(tmp_path / "out" / "preview.mp4") == 8
    workers = {t["worker_name"] for t in done["tasks"]}
    assert workers <= {"local-1", "local-2"} and None not in workers
    # the last-rendered preview came up Worker → Manager → Server: a JPEG of one of this job's frames, at the
    # frame's own size (64×36 fits in 512 px), and the worker that rendered it has it as its latest too
    shown = last_rendered(farm, f"/jobs/{job['id']}")
    assert shown["frame_path"] in {str(f) for f in frames}
    assert (shown["width"], shown["height"], shown["frame_width"], shown["frame_height"]) == (64, 36, 64, 36)
    assert shown["worker_name"] in workers
    worker_latest = farm.server.get(f"/workers/{shown['worker_id']}/last-rendered/info")
    assert worker_latest.status_code == 200 and worker_latest.json()["job_id"] == job["id"]
    for task in done["tasks"]:
        assert task["status"] == "completed"
        log = farm.task_log(task["id"])
        if task["type"] == "blender":
            assert "Blender quit" in log or "Saved:" in log, log[-2000:]
            assert "Fra:" in log
        else:
            assert "frame=" in log or "ffmpeg" in log.lower()


def last_rendered(farm: FarmClient, owner: str) -> dict[str, object]:
    """What `owner` (/jobs/ID or /workers/ID) last rendered, once the Server has it; checks the image too."""
    got = farm.wait_for(
        lambda: (r := farm.server.get(f"{owner}/last-rendered/info")).status_code == 200 and r.json(),
        30,
        lambda: f"no preview of {owner}",
    )
    image = farm.server.get(f"{owner}/last-rendered")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as img:
        assert (img.format, img.size) == ("JPEG", (got["width"], got["height"]))
    return dict(got)


def test_last_rendered_preview_of_a_large_frame_is_512_px(farm: FarmClient, tmp_path: Path) -> None:
    big = make_sample_scene(tmp_path / "hd.blend", frames=2, size=(1280, 720), samples=1)
    job = farm.submit(render_job(big, tmp_path / "out", frames="1-2", chunk=2, preview=False))
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    shown = last_rendered(farm, f"/jobs/{job['id']}")
    assert (shown["width"], shown["height"]) == (512, 288)
    assert (shown["frame_width"], shown["frame_height"]) == (1280, 720)
    assert shown["frame_path"] == str(tmp_path / "out" / "frame_0002.png")  # the task's newest frame wins


def test_exr_frames_render_without_a_preview(farm: FarmClient, scene: Path, tmp_path: Path) -> None:
    body = render_job(scene, tmp_path / "exr", frames="1-2", chunk=2, preview=False)
    body["settings"]["format"] = "OPEN_EXR"  # type: ignore[index]
    job = farm.submit(body)
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    assert len(list((tmp_path / "exr").glob("frame_*.exr"))) == 2
    assert farm.server.get(f"/jobs/{job['id']}/last-rendered").status_code == 404
    log = farm.task_log(done["tasks"][0]["id"])
    assert log.count("no preview of frame_0001.exr: not an image Pillow reads") == 1, log[-2000:]


def test_simulation_bake_runs_through_the_farm(farm: FarmClient, tmp_path: Path) -> None:
    blend = make_simulation_scene(tmp_path / "sim.blend")
    job = farm.submit(
        {
            "name": "bake the flag and the emitter",
            "type": "blender-bake",
            "settings": {
                "blendfile": str(blend),
                "caches": [{"target": "cloth", "object": "Flag"}, {"target": "point-cache", "object": "Emitter"}],
                "frame_start": 1,
                "frame_end": 6,
            },
        }
    )
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    by_name = {t["name"]: t for t in done["tasks"]}
    assert set(by_name) == {"bake cloth/Flag", "bake point-cache/Emitter", "verify-bake"}
    assert all(t["status"] == "completed" for t in done["tasks"])
    caches = sorted(p.name for p in (tmp_path / "blendcache_sim").iterdir())
    assert len(caches) == 12, caches  # 6 frames of each of the two caches, on disk next to the .blend
    assert "verified" in farm.task_log(by_name["verify-bake"]["id"])


def test_still_split_into_tiles_merges_to_full_size(farm: FarmClient, scene: Path, tmp_path: Path) -> None:
    final = tmp_path / "still.png"
    job = farm.submit({
        "name": "still in tiles", "type": "blender-still",
        "settings": {"blendfile": str(scene), "frame": 3, "output_path": str(final), "format": "PNG",
                     "width": 96, "height": 54, "split": "tiles", "tiles_x": 2, "tiles_y": 2},
    })  # fmt: skip
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    assert len(done["tasks"]) == 5
    with Image.open(final) as image:
        assert image.size == (96, 54)
        # every tile contributed: no quadrant is left empty
        for box in [(0, 0, 48, 27), (48, 0, 96, 27), (0, 27, 48, 54), (48, 27, 96, 54)]:
            assert image.convert("RGBA").crop(box).getbbox() is not None


def test_failing_command_is_retried_then_fails_the_job(farm: FarmClient, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-scene.blend"
    body = render_job(missing, tmp_path / "never", frames="1-2", chunk=2, preview=False)
    body["max_task_failures"] = 2
    job = farm.submit(body)
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "failed"
    task = done["tasks"][0]
    assert task["status"] == "failed"
    assert task["failure_count"] == 2
    assert "no-such-scene.blend does not exist" in task["activity"], task["activity"]
    log = farm.task_log(task["id"])
    assert log.count("no-such-scene.blend does not exist") == 2, log  # once per attempt
    r = subprocess.run(
        tablao_command("job", str(job["id"]), "--server", farm.farm.server_url,
                       "--token-file", str(farm.farm.admin_token_file)),
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0
    assert "status failed" in r.stdout
    assert "no-such-scene.blend does not exist" in r.stdout


def _long_job(scene: Path, out: Path) -> dict[str, object]:
    # a long-running render: every frame in one chunk, so a worker can be interrupted mid-task
    return render_job(scene, out, frames="1-8", chunk=8, preview=False)


def _running_task(farm: FarmClient, job_id: int) -> dict[str, object]:
    def running() -> dict[str, object] | None:
        for t in farm.job(job_id)["tasks"]:
            if t["status"] == "active" and t["worker_name"] and t["steps_done"] >= 1:
                return dict(t)
        return None

    return farm.wait_for(running, 120, lambda: "no task got going")  # type: ignore[no-any-return]


def _worker(farm: FarmClient, name: str):
    return next(w for w in farm.farm.workers if w.name == name.replace("local-", "worker-"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_worker_interrupted_mid_blender_task(tmp_path: Path, scene: Path, sig: signal.Signals) -> None:
    with local_farm(tmp_path / "farm", workers=2) as farm:
        # a bigger scene so one chunk takes a few seconds
        big = make_sample_scene(tmp_path / "big.blend", frames=8, size=(320, 180), samples=16)
        job = farm.submit(_long_job(big, tmp_path / "out"))
        task = _running_task(farm, job["id"])
        victim = _worker(farm, str(task["worker_name"]))
        assert victim.proc is not None
        victim.proc.send_signal(sig)
        victim.proc.wait(20)
        if sig == signal.SIGTERM:
            # a clean stop gives the task back at once, long before the worker timeout
            task_url = f"/tasks/{task['id']}"
            farm.wait_for(
                lambda: farm.server.get(task_url).json()["worker_name"] != task["worker_name"],
                10,
                lambda: f"task is {farm.server.get(task_url).json()}",
            )
        done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
        assert done["status"] == "completed", done["activity"]
        final = farm.server.get(f"/tasks/{task['id']}").json()
        assert final["worker_name"] != task["worker_name"]
        # a killed worker's task counts as a soft failure; a cleanly stopped one was given back, no failure
        assert final["failure_count"] == (1 if sig == signal.SIGKILL else 0)
        assert len(list((tmp_path / "out").glob("frame_*.png"))) == 8


async def _restart(child: Child) -> None:
    # started on the loop's thread: Linux ties a child's parent-death signal to the thread that started it
    child.start()
    await child.wait_healthy()


def test_manager_restart_mid_job_loses_no_log_line(tmp_path: Path) -> None:
    need_programs("python3")
    with local_farm(tmp_path / "farm", workers=2) as farm:
        script = (
            "import sys,time\nfor i in range(60):\n    print(f'line {i:03d} of task', flush=True); time.sleep(0.05)\n"
        )
        job = farm.submit({
            "name": "numbered lines", "type": "exec",
            "settings": {"command": ["python3", "-c", script], "frames": "1-6", "chunk_size": 1},
        })  # fmt: skip
        farm.wait_for(lambda: farm.job(job["id"])["tasks_completed"] >= 1, 60)
        assert farm.farm.manager.proc is not None
        farm.farm.manager.proc.send_signal(signal.SIGKILL)
        farm.farm.manager.proc.wait(10)
        farm.loop.run(_restart(farm.farm.manager))
        done = farm.wait_job(job["id"], {"completed", "failed", "canceled"}, timeout=180)
        assert done["status"] == "completed", done["activity"]
        for task in done["tasks"]:
            log = farm.task_log(task["id"])
            lines = [ln for ln in log.splitlines() if ln.startswith("line ") or " line " in ln]
            numbers = [int(ln.split("line ")[1][:3]) for ln in lines]
            # the last attempt's output is complete, in order, and nothing appears twice within it
            last = numbers[-60:]
            assert last == list(range(60)), (task["name"], numbers)
        statuses = [e["message"] for e in farm.server.get(f"/jobs/{job['id']}/log").json()]
        assert any("→ completed" in m for m in statuses)

"""What task processes get: a scrubbed environment, output roots checked after links, secrets out of reach."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from services.protocol import process_guard
from services.protocol.commands import BlenderRenderParams
from services.worker import landlock, task_policy
from services.worker.runners import get_runner
from services.worker.runners.blender import render_argv
from services.worker.runners.process import run_process
from services.worker.task_env import task_environment

PY = sys.executable
needs_landlock = pytest.mark.skipif(landlock.abi_version() < 1, reason="this kernel has no Landlock")

pytestmark = pytest.mark.usefixtures("spawn_way")


def test_environment_keeps_the_allow_list_and_drops_loaders_and_secrets() -> None:
    inherited = {"PATH": "/bin", "LANG": "C", "LD_PRELOAD": "/x.so", "TABLAO_ADMIN_TOKEN": "t", "AWS_SECRET": "s",
                 "STUDIO_LICENSE": "lic", "PYTHONPATH": "/evil"}  # fmt: skip
    extra = {"SHOT": "010", "LD_LIBRARY_PATH": "/evil", "DYLD_INSERT_LIBRARIES": "/x", "MY_TOKEN": "t"}
    env = task_environment(inherited, extra, allow=["STUDIO_*", "PYTHONPATH"])
    # the farm may allow its own names, never a loader variable; the job's own names pass unless denied
    assert env == {"PATH": "/bin", "LANG": "C", "STUDIO_LICENSE": "lic", "SHOT": "010"}


def test_a_change_to_the_workers_environment_reaches_the_next_task(monkeypatch: pytest.MonkeyPatch) -> None:
    # the filtered environment is kept between task starts while the worker's own does not change
    monkeypatch.setenv("LC_TABLAO_PROBE", "a")
    assert task_environment(os.environ)["LC_TABLAO_PROBE"] == "a"
    monkeypatch.setenv("LC_TABLAO_PROBE", "b")
    assert task_environment(os.environ)["LC_TABLAO_PROBE"] == "b"
    monkeypatch.setenv("LD_PRELOAD", "/x.so")
    assert "LD_PRELOAD" not in task_environment(os.environ, allow=["LD_*"])
    monkeypatch.delenv("LC_TABLAO_PROBE")
    assert "LC_TABLAO_PROBE" not in task_environment(os.environ)
    # what one task's environment adds or changes stays with that task
    first = task_environment(os.environ, {"SHOT": "010"})
    first["PATH"] = "/elsewhere"
    after = task_environment(os.environ)
    assert "SHOT" not in after and after["PATH"] == os.environ["PATH"]


async def test_exec_task_sees_no_tablao_secret_nor_loader_variable(rec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_WORKER_REGISTRATION_SECRET", "s3cret")
    run = get_runner("exec")
    assert run is not None
    code = "import os; print(sorted(k for k in os.environ if k.startswith(('TABLAO', 'LD_'))))"
    await run({"argv": [PY, "-c", code], "env": {"LD_PRELOAD": "/x.so", "SHOT": "1"}}, rec.context())
    assert rec.lines[-1] == "[]"
    assert "LD_PRELOAD" in rec.lines[0]  # the task log says what was not passed on


def test_blender_runs_without_scripts_from_blend_files_unless_allowed() -> None:
    params: BlenderRenderParams = {"blendfile": "/s.blend", "output": "/o/####", "format": "PNG", "frames": "1"}
    argv = render_argv("blender", params)
    assert argv.index("--disable-autoexec") < argv.index("/s.blend")
    task_policy.use_policy(task_policy.TaskPolicy(blender_autoexec=True))
    try:
        assert "--enable-autoexec" in render_argv("blender", params)
    finally:
        task_policy.use_policy(task_policy.TaskPolicy())  # a sync test sets it for the tests after it too


def test_written_paths_must_resolve_under_a_root_after_variables_and_links(tmp_path: Path) -> None:
    root, secret = tmp_path / "renders", tmp_path / "service"
    root.mkdir()
    secret.mkdir()
    (root / "link").symlink_to(secret)
    policy = task_policy.TaskPolicy(output_roots=("{render_root}",), protect=(tmp_path / "service",))
    task_policy.use_policy(policy)
    task_policy.use_variables({"render_root": str(root)})
    assert task_policy.output_problem("blender-render", {"output": str(root / "shot" / "f_####")}) is None
    assert "outside the farm's output roots" in str(task_policy.output_problem("ffmpeg", {"output": "/var/x.mp4"}))
    assert "outside" in str(task_policy.output_problem("copy-file", {"dest": f"{root}/../escape"}))
    assert "parameter 'output'" in str(task_policy.output_problem("merge-images", {"output": f"{root}/link/x"}))
    assert task_policy.output_problem("echo", {"output": "/anything"}) is None


def test_output_folders_are_made_outside_protected_ones_confined_or_not(tmp_path: Path) -> None:
    """An artist's encode into a folder not there yet failed on a worker running unconfined (ffmpeg makes no
    folders, and only a confined run had them made); a folder inside a protected one is never made."""
    guarded = tmp_path / "service"
    try:
        for confine in (False, True):
            task_policy.use_policy(task_policy.TaskPolicy(confine=confine, protect=(guarded,)))
            out = tmp_path / f"confine-{confine}" / "newdir" / "sub" / "x.mp4"
            task_policy.make_output_folders("ffmpeg", {"output": str(out)})
            assert out.parent.is_dir(), confine
            inside = guarded / f"confine-{confine}" / "made" / "x.mp4"
            task_policy.make_output_folders("ffmpeg", {"output": str(inside)})
            assert not inside.parent.exists() and not guarded.exists(), confine
    finally:
        task_policy.use_policy(task_policy.TaskPolicy())


@needs_landlock
async def test_confined_task_cannot_read_protected_files_nor_write_outside_the_roots(tmp_path: Path) -> None:
    data, roots = tmp_path / "data", tmp_path / "renders"
    (data / "server").mkdir(parents=True)
    (data / "server" / "admin.token").write_text("s3cret")
    (data / "render").mkdir()
    policy = task_policy.TaskPolicy(output_roots=(str(data / "render"),), protect=(data,))
    task_policy.use_policy(task_policy.effective_policy(policy, data / "worker"))
    script = (
        f"cat {data}/server/admin.token; echo in > {data}/render/ok; echo out > {tmp_path}/planted; "
        f"echo tmp > $TMPDIR/t && cat $TMPDIR/t; kill -0 {os.getpid()} || echo no-signal"
    )
    lines: list[str] = []
    await run_process(["sh", "-c", script], lines.append)
    text = "\n".join(lines)
    assert "s3cret" not in text and "Permission denied" in text
    assert (data / "render" / "ok").read_text() == "in\n"
    assert not (tmp_path / "planted").exists()
    assert "tmp" in lines
    if landlock.abi_version() >= 6:
        assert "no-signal" in lines
    del roots


@needs_landlock
async def test_the_worker_itself_stays_unconfined_and_at_its_priority(tmp_path: Path) -> None:
    """Confinement and the lower priority are the task's: the worker still reads its own protected files after
    starting a confined process, from its loop's thread and from any other, at its own priority."""
    import threading

    import psutil

    from services.worker import render_limits

    data = tmp_path / "data"
    data.mkdir()
    (data / "secret").write_text("mine")
    task_policy.use_policy(task_policy.effective_policy(task_policy.TaskPolicy(protect=(data,)), tmp_path / "w"))
    render_limits.configure(render_limits.RenderLimits(low_priority=True))
    nice = psutil.Process().nice()
    try:
        lines: list[str] = []
        await run_process(["sh", "-c", f"cat {data}/secret; nice"], lines.append)
        assert "mine" not in lines and str(min(19, nice + render_limits.NICE_LOW)) in lines
    finally:
        render_limits.configure(render_limits.RenderLimits())
    assert (data / "secret").read_text() == "mine"
    assert psutil.Process().nice() == nice
    seen: list[str] = []
    other = threading.Thread(target=lambda: seen.append((data / "secret").read_text()))
    other.start()
    other.join()
    assert seen == ["mine"]


def test_forget_env_blanks_the_value_proc_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    # a child started with the secret in its environment, which then forgets it
    import subprocess

    code = (
        "import os, sys; from services.protocol.process_guard import forget_env, harden\n"
        "forget_env(['TABLAO_ADMIN_TOKEN']); print(harden())\n"
        "print(b'topsecret' in open(f'/proc/{os.getpid()}/environ', 'rb').read(), 'TABLAO_ADMIN_TOKEN' in os.environ)"
    )
    env = {**os.environ, "TABLAO_ADMIN_TOKEN": "topsecret"}
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=True)
    if sys.platform.startswith("linux"):
        assert out.stdout.split() == ["True", "False", "False"]
    assert process_guard is not None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root")
async def test_run_as_starts_tasks_as_another_user_with_their_own_scratch_folder(tmp_path: Path) -> None:
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    secret = tmp_path / "data" / "admin.token"
    secret.parent.mkdir(mode=0o700)
    secret.write_text("s3cret")
    task_policy.use_policy(task_policy.effective_policy(task_policy.TaskPolicy(run_as="nobody"), tmp_path / "w"))
    lines: list[str] = []
    status = await run_process(["sh", "-c", f"id -u; echo t > $TMPDIR/t && cat $TMPDIR/t; cat {secret}"], lines.append)
    assert lines[0] == str(nobody.pw_uid)
    assert "t" in lines and "s3cret" not in "\n".join(lines)
    assert status != 0  # the last command, reading the secret, failed


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root")
def test_a_run_as_scratch_folder_another_user_made_first_is_refused_and_ours_is_made_private(tmp_path: Path) -> None:
    import pwd
    import shutil

    try:
        nobody, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("no users 'nobody' and 'daemon' here")
    policy = task_policy.effective_policy(task_policy.TaskPolicy(run_as="nobody"), tmp_path / "w")
    parent = task_policy._scratch_parent_path(policy)
    assert parent is not None and parent.parent == Path(tempfile.gettempdir())
    shutil.rmtree(parent, ignore_errors=True)
    try:
        parent.mkdir(mode=0o777)  # another local user's, made before the worker's first task
        parent.chmod(0o777)
        os.chown(parent, daemon.pw_uid, daemon.pw_gid)
        with pytest.raises(PermissionError, match="owned by another user"):
            task_policy._scratch_parent(policy)
        parent.rmdir()
        parent.symlink_to(tmp_path)  # a link to a folder of someone's choosing
        with pytest.raises(PermissionError, match="not a folder"):
            task_policy._scratch_parent(policy)
        parent.unlink()
        parent.mkdir(mode=0o777)  # ours, but left open (an older worker's)
        parent.chmod(0o777)
        assert task_policy._scratch_parent(policy) == parent
        st = parent.lstat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o700, nobody.pw_uid)
    finally:
        if parent.is_symlink():
            parent.unlink()


@needs_landlock
def test_a_ruleset_is_reused_until_an_entry_appears_beside_a_protected_folder(tmp_path: Path) -> None:
    # building one walks folders: tasks of a few tens of milliseconds must not pay for it each time
    secrets, out = tmp_path / "farm", tmp_path / "out"
    secrets.mkdir()
    out.mkdir()
    policy = task_policy.TaskPolicy(output_roots=(str(tmp_path),), protect=(secrets,))
    task_policy.use_policy(policy)
    task_policy.forget_rulesets()
    first = task_policy._ruleset(policy, None)
    (out / "frame_0001.png").write_text("x")  # inside a granted folder: the ruleset still covers it
    assert task_policy._ruleset(policy, None) is first
    (tmp_path / "shot020").mkdir()  # beside the protected folder: the next task gets a ruleset granting it
    second = task_policy._ruleset(policy, None)
    assert second is not first
    assert task_policy._ruleset(policy, None) is second

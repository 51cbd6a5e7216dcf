"""The registry of command runners: command name → coroutine function, one module per command family."""

from __future__ import annotations

from services.protocol import commands
from services.protocol.commands import TASK_TYPE_PROGRAMS
from services.worker.runners import gates, thread_spawn
from services.worker.runners.bake import run_blender_bake
from services.worker.runners.base import CommandFailed, Programs, Registered, RunContext, Runner
from services.worker.runners.basic import run_echo, run_exec, run_sleep
from services.worker.runners.blender import run_blender_render
from services.worker.runners.ffmpeg import run_ffmpeg
from services.worker.runners.files import run_copy_file, run_move_out_of_way, run_remove_path
from services.worker.runners.images import run_merge_images
from services.worker.runners.openjd import run_openjd_task
from services.worker.runners.sample_merge import run_merge_samples

# One runner per command of the contract, under the command's name; each checks its parameters first.
RUNNERS: dict[str, Runner] = {
    r.spec.name: r
    for r in (
        Registered(commands.BLENDER_RENDER, run_blender_render),
        Registered(commands.BLENDER_BAKE, run_blender_bake),
        Registered(commands.MERGE_IMAGES, run_merge_images),
        Registered(commands.MERGE_SAMPLES, run_merge_samples),
        Registered(commands.FFMPEG, run_ffmpeg),
        Registered(commands.EXEC, run_exec),
        Registered(commands.OPENJD_TASK, run_openjd_task),
        Registered(commands.MOVE_OUT_OF_WAY, run_move_out_of_way),
        Registered(commands.COPY_FILE, run_copy_file),
        Registered(commands.REMOVE_PATH, run_remove_path),
        Registered(commands.ECHO, run_echo),
        Registered(commands.SLEEP, run_sleep),
    )
}


def get_runner(name: str) -> Runner | None:
    return RUNNERS.get(name)


def prepare_checks() -> None:
    """Build every runner's parameter check now, and look for setpriv (thread_spawn.py) and a shell that can hold
    a process (gates.py), so the first task of each command, and the first process held, do not wait for them.

    Each is built on first use otherwise, and the first one built in a process takes tens of milliseconds; the
    probes run programs.
    """
    for spec in commands.COMMANDS.values():
        _ = spec.adapter
    if thread_spawn.setpriv() is not None:
        gates.keep_environment()


def available_task_types(programs: Programs) -> list[str]:
    found = {"blender": programs.blender, "ffmpeg": programs.ffmpeg}
    return [t.value for t, prog in TASK_TYPE_PROGRAMS.items() if prog is None or found[prog] is not None]


__all__ = [
    "RUNNERS",
    "CommandFailed",
    "Programs",
    "RunContext",
    "Runner",
    "available_task_types",
    "get_runner",
    "prepare_checks",
]

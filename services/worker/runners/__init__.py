"""The registry of command runners: command name → coroutine function, one module per command family."""

from __future__ import annotations

from services.worker.runners.bake import run_blender_bake
from services.worker.runners.base import CommandFailed, Programs, RunContext, Runner
from services.worker.runners.basic import run_echo, run_exec, run_sleep
from services.worker.runners.blender import run_blender_render
from services.worker.runners.ffmpeg import run_ffmpeg
from services.worker.runners.files import run_copy_file, run_move_out_of_way, run_remove_path
from services.worker.runners.images import run_merge_images
from services.worker.runners.openjd import run_openjd_task

RUNNERS: dict[str, Runner] = {
    "blender-render": run_blender_render,
    "blender-bake": run_blender_bake,
    "merge-images": run_merge_images,
    "ffmpeg": run_ffmpeg,
    "exec": run_exec,
    "openjd-task": run_openjd_task,
    "move-out-of-way": run_move_out_of_way,
    "copy-file": run_copy_file,
    "remove-path": run_remove_path,
    "echo": run_echo,
    "sleep": run_sleep,
}

# which task types a worker can offer, and the program each needs (None: always available)
TASK_TYPE_PROGRAMS: dict[str, str | None] = {
    "blender": "blender",
    "ffmpeg": "ffmpeg",
    "image": None,
    "file-management": None,
    "exec": None,
    "openjd": None,
    "misc": None,
}


def get_runner(name: str) -> Runner | None:
    return RUNNERS.get(name)


def available_task_types(programs: Programs) -> list[str]:
    found = {"blender": programs.blender, "ffmpeg": programs.ffmpeg}
    return [t for t, prog in TASK_TYPE_PROGRAMS.items() if prog is None or found[prog] is not None]


__all__ = [
    "RUNNERS",
    "CommandFailed",
    "Programs",
    "RunContext",
    "Runner",
    "available_task_types",
    "get_runner",
]

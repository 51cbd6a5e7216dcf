"""The `blender-render` command: Blender in background mode, progress from `Fra:` and `Saved:` lines."""

from __future__ import annotations

import re

from services.protocol.commands import BlenderRenderParams
from services.protocol.terminal_text import escaped
from services.worker.runners.base import CommandFailed, RunContext, need_blend_file, need_program
from services.worker.runners.process import run_process
from services.worker.task_policy import blender_autoexec_args

NAME = "blender-render"
_FRA = re.compile(r"^Fra:(-?\d+)\b")
_SAVED = re.compile(r"^Saved: '(.+)'")
_FRAMES = re.compile(r"^\s*(-?\d+)\s*(?:\.\.\s*(-?\d+)\s*)?$")
# Blender prints these harmless "errors" at exit in some builds
_BENIGN_ERRORS = ("Error: Not freed memory blocks",)


def count_frames(frames: str) -> int | None:
    """How many frames Blender's `-f` syntax names (`1..4,7` → 5); None when it cannot tell."""
    total = 0
    for part in frames.split(","):
        m = _FRAMES.match(part)
        if not m:
            return None
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) is not None else start
        if end < start:
            return None
        total += end - start + 1
    return total


class BlenderOutput:
    """Parses Blender's output: frames seen, files saved, and the first `Error:` line as the reason."""

    def __init__(self, ctx: RunContext, total: int | None) -> None:
        self.ctx = ctx
        self.total = total
        self.frame: int | None = None
        self.saved: list[str] = []
        self.errors: list[str] = []

    def feed(self, line: str) -> None:
        self.ctx.log(line)
        m = _FRA.match(line)
        if m:
            self.frame = int(m.group(1))
            return
        m = _SAVED.match(line)
        if m:
            self.saved.append(m.group(1))
            self.ctx.output_file(m.group(1))
            self.ctx.progress(len(self.saved), self.total)
            return
        stripped = line.lstrip()
        if stripped.startswith("Error:") and not stripped.startswith(_BENIGN_ERRORS):
            self.errors.append(stripped)

    def failure(self, status: int) -> str | None:
        if self.errors:
            return f"Blender: {self.errors[0]}" + (f" (exit status {status})" if status else "")
        if status != 0:
            return f"Blender exited with status {status}"
        return None


def render_argv(blender: str, params: BlenderRenderParams) -> list[str]:
    # scripts stored in the blend file run only where the farm allows it; the flag must precede the file
    argv = [blender, *blender_autoexec_args(), "-b", params["blendfile"]]
    expr = params.get("python_expr")
    if expr:
        argv += ["--python-exit-code", "1", "--python-expr", expr]
    scene = params.get("scene")
    if scene:
        argv += ["-S", scene]
    argv += params.get("args", [])
    # Blender applies -o and -F only to renders that come after them on the command line
    argv += ["-o", params["output"], "-F", params["format"], "-f", params["frames"]]
    return argv


async def run_blender_render(params: BlenderRenderParams, ctx: RunContext) -> None:
    blender = need_program(NAME, ctx.programs.blender, "blender")
    argv = render_argv(blender, params)
    frames = params["frames"]
    await need_blend_file(NAME, params["blendfile"])
    parser = BlenderOutput(ctx, count_frames(frames))
    ctx.log("running: " + escaped(" ".join(argv)))
    status = await run_process(argv, parser.feed, grace_seconds=ctx.grace_seconds, started=ctx.started)
    reason = parser.failure(status)
    if reason:
        raise CommandFailed(reason)
    if not parser.saved:
        raise CommandFailed(f"{NAME}: Blender finished without saving any frame (frames {frames!r})")

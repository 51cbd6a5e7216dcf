"""The versions of the external programs a worker found, for sign-on (`blender --version`, `ffmpeg -version`)."""

from __future__ import annotations

import asyncio
import subprocess

from services.localfarm.lifeline import program_hook
from services.worker.runners import Programs


async def _first_line(argv: list[str]) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=program_hook(),  # a worker killed while Blender starts up takes it along
        )  # fmt: skip
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30.0)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    for line in out.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            return line.strip()[:200].replace("\x00", "\ufffd")  # the Manager refuses NULs
    return None


async def software_versions(programs: Programs) -> dict[str, str]:
    """Both programs are asked at once; Blender takes a second or so to start."""
    jobs: dict[str, list[str]] = {}
    if programs.blender:
        jobs["blender"] = [programs.blender, "--version"]
    if programs.ffmpeg:
        jobs["ffmpeg"] = [programs.ffmpeg, "-version"]
    lines = await asyncio.gather(*(_first_line(argv) for argv in jobs.values()))
    return {name: line for name, line in zip(jobs, lines, strict=True) if line}

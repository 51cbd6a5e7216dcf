"""The `ffmpeg` command: runs ffmpeg with `-progress pipe:1` and turns `frame=` lines into progress."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from services.protocol.commands import FfmpegParams
from services.protocol.terminal_text import escaped
from services.worker.runners.base import CommandFailed, RunContext, need_file_path, need_program
from services.worker.runners.process import run_process

NAME = "ffmpeg"
# keys of ffmpeg's -progress blocks (one key=value a line, values may be space-padded); these lines are
# progress, not log. ffmpeg's final statistics line ("frame=   48 fps=0.0 q=28.0 ...") has several '='
# and stays in the log.
_PROGRESS_KEY = re.compile(
    r"^(frame|fps|stream_\d+_\d+_q|bitrate|total_size|out_time_us|out_time_ms|out_time|dup_frames|"
    r"drop_frames|speed|progress)=[^=]*$"
)


class FfmpegProgress:
    """Reads ffmpeg's merged output; progress lines update `frame`, other lines go to the log."""

    def __init__(self, ctx: RunContext, total_frames: int | None) -> None:
        self.ctx = ctx
        self.total = total_frames
        self.frame = 0
        self.last_lines: list[str] = []

    def feed(self, line: str) -> None:
        if _PROGRESS_KEY.match(line):
            if line.startswith("frame="):
                try:
                    frame = int(line[6:].strip())
                except ValueError:
                    return
                if frame != self.frame:
                    self.frame = frame
                    self.ctx.progress(frame, self.total)
            return
        self.ctx.log(line)
        # the reason of a failure is in ffmpeg's last words
        self.last_lines = [*self.last_lines[-2:], line]


def inputs(args: Sequence[str]) -> Iterator[str]:
    """The files ffmpeg is asked to read: each `-i`'s value, the parts of a `concat:` join one by one."""
    for option, value in itertools.pairwise(args):
        if option == "-i":
            yield from value.removeprefix("concat:").split("|") if value.startswith("concat:") else [value]


async def run_ffmpeg(params: FfmpegParams, ctx: RunContext) -> None:
    output = params.get("output")
    program = need_program(NAME, ctx.programs.ffmpeg, "ffmpeg")
    progress = FfmpegProgress(ctx, params.get("total_frames"))
    for source in inputs(params["args"]):
        need_file_path(NAME, "input", source)
    if output is not None:
        need_file_path(NAME, "output", output)
    argv = [program, "-y", "-nostdin", "-progress", "pipe:1", "-nostats", *params["args"]]
    ctx.log("running: " + escaped(" ".join(argv)))
    status = await run_process(argv, progress.feed, grace_seconds=ctx.grace_seconds, started=ctx.started)
    if status != 0:
        last = progress.last_lines[-1] if progress.last_lines else "no output"
        raise CommandFailed(f"{NAME} exited with status {status}: {last}")
    if output is not None:
        if not await asyncio.to_thread(Path(output).is_file):
            raise CommandFailed(f"{NAME}: finished but the output {output} does not exist")
        ctx.output_file(output)

"""`tablao demo`: make the sample scene with Blender and render it on the farm, with a preview video."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.client_cli import (
    cli_client,
    connection,
    connection_args,
    reader_gone,
    run_reporting_errors,
)
from services.localfarm.demo_run import DemoRun
from services.localfarm.layout import FarmLayout
from services.protocol import EXIT_INTERRUPTED


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tablao demo", description=__doc__)
    connection_args(parser)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work-dir", type=Path, default=None, help="where the scene and frames go")
    parser.add_argument("--no-wait", action="store_true", help="submit and return")
    args = parser.parse_args(argv)
    try:
        server, token = connection(args)
    except SystemExit as exc:
        print(f"tablao demo: {exc}", file=sys.stderr)
        return 1
    work_dir = (args.work_dir or FarmLayout.default().demo_dir).resolve()

    async def check_server() -> int:
        async with cli_client("demo", server, token, args.ca_bundle) as client:
            await client.farm_status()
        return 0

    if run_reporting_errors("demo", check_server, given=args.server, local=not args.server) != 0:
        return 1
    demo: DemoRun | None = None
    try:
        demo = DemoRun(server, token, work_dir, args.frames)
        demo.submit()
        while not args.no_wait and not demo.poll():
            time.sleep(1)
        sys.stdout.flush()  # here, not at exit: a reader gone away (`| head`) is handled below
    except SystemExit as exc:
        print(f"tablao demo: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return reader_gone()
    except KeyboardInterrupt:
        if demo is not None and demo.job_id is not None:
            print(f"tablao demo: stopped waiting; the demo job {demo.job_id} goes on (stop it with: tablao job "
                  f"{demo.job_id} --action cancel)", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    return 0

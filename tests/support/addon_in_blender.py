"""Run inside Blender (`blender -b FILE --python THIS -- ARGS`): install the add-on zip and use its operators.

Prints one line `TABLAO_RESULT {json}` with what the operator reported, the panel's state and whether
Blender raised; the tests read it. Operators that report an error raise RuntimeError in bpy.ops: that is
Blender's way of handing a script the message, and it is caught here.
"""

import argparse
import json
import sys

import bpy  # type: ignore[import-not-found]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("zip")
    p.add_argument("--server", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--action", choices=["check", "submit", "screenshot"], default="submit")
    p.add_argument("--job-type", default="animation")
    p.add_argument("--output-path", default="{render_root}/addon/frame_####")
    p.add_argument("--chunk-size", type=int, default=2)
    p.add_argument("--priority", type=int, default=50)
    p.add_argument("--tags", default="")
    args = p.parse_args(sys.argv[sys.argv.index("--") + 1 :])

    bpy.ops.preferences.addon_install(filepath=args.zip, overwrite=True)
    bpy.ops.preferences.addon_enable(module="tablao_submit")
    import tablao_submit  # type: ignore[import-not-found]

    prefs = bpy.context.preferences.addons["tablao_submit"].preferences
    prefs.server_url = args.server
    prefs.api_token = args.token
    s = bpy.context.scene.tablao
    saved_priority = s.priority  # what the .blend held when opened: proves a submission saved it first
    s.job_type = args.job_type
    s.output_path = args.output_path
    s.chunk_size = args.chunk_size
    s.priority = args.priority
    s.tags = args.tags
    raised = ""
    try:
        if args.action == "check":
            bpy.ops.tablao.check_connection()
        else:
            bpy.ops.tablao.submit()
    except RuntimeError as exc:
        raised = str(exc)
    state = dict(tablao_submit.STATE)
    result = {"raised": raised, "saved_priority": saved_priority, **state}
    print("TABLAO_RESULT " + json.dumps(result), flush=True)


main()

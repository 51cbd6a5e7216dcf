"""The `merge-samples` command: averages sample chunks of one still, in linear light, inside Blender.

Each chunk of a `blender-still` split by samples is rendered to a 32-bit OpenEXR: scene-linear radiance, before
any view transform. Averaging those (weighted by each chunk's samples) is what one render with all the samples
computes, so the merged image equals a full render within noise. Averaging 8-bit PNGs after the view transform
(Filmic, Standard) would not: the transform is not linear, so the mean of transformed chunks is darker and
banded. Blender then writes the final image with the scene's own colour management and format settings, so it
looks exactly as a full render of that scene would (in the tests: as close to one as two full renders with
different seeds are to each other).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from services.protocol.commands import MergeSamplesParams
from services.worker.runners.base import CommandFailed, RunContext, need_blend_file, need_program
from services.worker.runners.blender import BlenderOutput
from services.worker.runners.process import run_process
from services.worker.task_policy import blender_autoexec_args

NAME = "merge-samples"

# Runs inside Blender with the job's .blend loaded (its scene's colour management applies). Debian's Blender
# has no numpy: the sums use typed arrays and foreach_get/foreach_set, which keeps a 1920×1080 chunk to about
# a second of Python.
MERGE_SCRIPT = r"""
import array, bpy, sys
P = json.loads(PARAMS)

def fail(message):
    print("Error: " + message)
    sys.stdout.flush()
    sys.exit(1)

scene = bpy.data.scenes.get(P["scene"]) if P.get("scene") else bpy.context.scene
if scene is None:
    fail("no scene named %r" % P["scene"])
total = None
size = None
weights = 0.0
for part in P["inputs"]:
    try:
        img = bpy.data.images.load(part["path"], check_existing=False)
    except RuntimeError as exc:
        fail("cannot read %s: %s" % (part["path"], exc))
    if size is None:
        size = tuple(img.size)
        total = array.array("f", bytes(4 * 4 * size[0] * size[1]))
    elif tuple(img.size) != size:
        fail("%s is %dx%d, the first part is %dx%d" % (part["path"], img.size[0], img.size[1], size[0], size[1]))
    buf = array.array("f", bytes(4 * len(total)))
    img.pixels.foreach_get(buf)
    w = float(part["weight"])
    total = array.array("f", [t + w * b for t, b in zip(total, buf)])
    weights += w
    bpy.data.images.remove(img)
    print("Tablao: merged %s" % part["path"])
    sys.stdout.flush()
merged = bpy.data.images.new("tablao-merged", size[0], size[1], alpha=True, float_buffer=True)
merged.pixels.foreach_set(array.array("f", [t / weights for t in total]))
# Written by the render pipeline, through a compositor that only shows the merged image: the same colour
# management, dither and 8-bit rounding as a render of the scene (Image.save_render rounds differently, half
# a level darker on average). With no Render Layers node, Blender composites without rendering the scene.
scene.use_nodes = True
tree = scene.node_tree
tree.nodes.clear()
source = tree.nodes.new("CompositorNodeImage")
source.image = merged
sink = tree.nodes.new("CompositorNodeComposite")
tree.links.new(source.outputs["Image"], sink.inputs["Image"])
r = scene.render
r.use_compositing = True
r.use_sequencer = False
r.use_border = False
r.resolution_x, r.resolution_y, r.resolution_percentage = size[0], size[1], 100
r.image_settings.file_format = P["format"]
if P["format"] == "OPEN_EXR":
    r.image_settings.color_depth = "32"
r.use_file_extension = False
r.filepath = P["output"]
bpy.ops.render.render(write_still=True, scene=scene.name)
"""


async def run_merge_samples(params: MergeSamplesParams, ctx: RunContext) -> None:
    blender = need_program(NAME, ctx.programs.blender, "blender")
    blendfile = params["blendfile"]
    missing = [p["path"] for p in params["inputs"] if not await asyncio.to_thread(Path(p["path"]).is_file)]
    if missing:
        raise CommandFailed(f"{NAME}: missing parts: {', '.join(missing)}")
    await need_blend_file(NAME, blendfile)
    await asyncio.to_thread(Path(params["output"]).parent.mkdir, parents=True, exist_ok=True)
    script_params = {k: params[k] for k in ("inputs", "output", "format")} | {"scene": params.get("scene")}
    expr = "import json\nPARAMS = " + repr(json.dumps(script_params)) + "\n" + MERGE_SCRIPT
    # scripts stored in the blend file run only where the farm allows it; the flag must precede the file
    argv = [blender, *blender_autoexec_args(), "-b", blendfile, "--python-exit-code", "1", "--python-expr", expr]
    ctx.log(f"running: {blender} -b {blendfile} --python-expr <merge {len(params['inputs'])} sample chunks>")
    parser = BlenderOutput(ctx, 1)
    status = await run_process(argv, parser.feed, grace_seconds=ctx.grace_seconds, started=ctx.started)
    reason = parser.failure(status)
    if reason:
        raise CommandFailed(reason.replace("Blender:", f"{NAME}:", 1))
    if not parser.saved:
        raise CommandFailed(f"{NAME}: Blender finished without saving the merged image")

"""The `blender-bake` command: bakes simulations into disk caches, or verifies them, inside Blender."""

from __future__ import annotations

import json
import re
from typing import Any

from services.protocol.commands import BakeParams, VerifyBakeParams
from services.protocol.terminal_text import escaped
from services.worker.runners.base import CommandFailed, RunContext, need_blend_file, need_program
from services.worker.runners.blender import BlenderOutput
from services.worker.runners.process import run_process
from services.worker.task_policy import blender_autoexec_args

NAME = "blender-bake"
_STEP = re.compile(r"^Tablao: (?:baked|verified) (\d+)/(\d+)")

# Runs inside Blender. It never saves the .blend, so several workers can bake caches of one file at once;
# the caches go to disk next to the file (point caches: blendcache_<name>/, fluid: the domain's directory).
BAKE_SCRIPT = r"""
import bpy, glob, os, sys
P = json.loads(PARAMS)

def fail(message):
    print("Error: " + message)
    sys.stdout.flush()
    sys.exit(1)

def say(message):
    print("Tablao: " + message)
    sys.stdout.flush()

def caches(kind, obj_name, mod_name):
    found = []
    for ob in bpy.data.objects:
        if obj_name and ob.name != obj_name:
            continue
        for md in ob.modifiers:
            if mod_name and md.name != mod_name:
                continue
            if kind == "cloth" and md.type == "CLOTH":
                found.append((ob, md, md.point_cache))
            elif kind == "point-cache" and md.type == "PARTICLE_SYSTEM":
                found.append((ob, md, md.particle_system.point_cache))
            elif kind == "point-cache" and md.type == "SOFT_BODY":
                found.append((ob, md, md.point_cache))
            elif kind == "fluid" and md.type == "FLUID" and md.fluid_type == "DOMAIN":
                found.append((ob, md, md.domain_settings))
    return found

def files_for(kind, ob, cache, frame):
    if kind == "fluid":
        root = bpy.path.abspath(cache.cache_directory)
        return glob.glob(os.path.join(glob.escape(root), "data", "*_%04d.*" % frame))
    if cache.use_external:
        root = bpy.path.abspath(cache.filepath)
    else:
        blend = bpy.data.filepath
        stem = os.path.splitext(os.path.basename(blend))[0]
        root = os.path.join(os.path.dirname(blend), "blendcache_" + stem)
    prefix = cache.name or "".join("%02X" % b for b in ob.name.encode())
    return glob.glob(os.path.join(glob.escape(root), glob.escape(prefix) + "_%06d*.bphys" % frame))

scene = bpy.context.scene
fs, fe = P["frame_start"], P["frame_end"]
# particle caches end where the scene ends, whatever their own range says; the file is never saved
scene.frame_start, scene.frame_end = fs, fe
if P["target"] == "verify":
    entries = P["caches"]
    for i, entry in enumerate(entries, 1):
        kind = entry["target"]
        found = caches(kind, entry.get("object"), entry.get("modifier"))
        if not found:
            fail("no %s simulation found for %r" % (kind, entry))
        for ob, md, cache in found:
            for frame in range(fs, fe + 1):
                if not files_for(kind, ob, cache, frame):
                    fail("%s cache of %s/%s has no file for frame %d" % (kind, ob.name, md.name, frame))
        say("verified %d/%d" % (i, len(entries)))
else:
    kind = P["target"]
    found = caches(kind, P.get("object"), P.get("modifier"))
    if not found:
        fail("no %s simulation found (object=%r, modifier=%r)" % (kind, P.get("object"), P.get("modifier")))
    for i, (ob, md, cache) in enumerate(found, 1):
        say("baking %s of %s/%s, frames %d-%d" % (kind, ob.name, md.name, fs, fe))
        if kind == "fluid":
            cache.cache_type = "ALL"
            cache.cache_frame_start, cache.cache_frame_end = fs, fe
            with bpy.context.temp_override(scene=scene, object=ob, active_object=ob):
                result = bpy.ops.fluid.bake_all()
        else:
            cache.use_disk_cache = True
            cache.frame_start, cache.frame_end = fs, fe
            with bpy.context.temp_override(scene=scene, active_object=ob, point_cache=cache):
                result = bpy.ops.ptcache.bake(bake=True)
        if "FINISHED" not in result:
            fail("baking %s/%s returned %s" % (ob.name, md.name, result))
        say("baked %d/%d" % (i, len(found)))
"""


def bake_expression(params: dict[str, Any]) -> str:
    """The Python expression for `--python-expr`: the parameters as JSON, then the script."""
    return "import json\nPARAMS = " + repr(json.dumps(params)) + "\n" + BAKE_SCRIPT


def bake_params(params: BakeParams | VerifyBakeParams) -> dict[str, Any]:
    """What the script reads: the frames, and the simulation to bake or the caches to verify."""
    start, end = params["frame_start"], params["frame_end"]
    if end < start:
        raise CommandFailed(f"{NAME}: 'frame_end' ({end}) is before 'frame_start' ({start})")
    out: dict[str, Any] = {"target": params["target"], "frame_start": start, "frame_end": end}
    if params["target"] == "verify":
        out["caches"] = [
            {"target": c["target"], "object": c.get("object"), "modifier": c.get("modifier")} for c in params["caches"]
        ]
    else:
        out["object"] = params.get("object")
        out["modifier"] = params.get("modifier")
    return out


class _BakeOutput(BlenderOutput):
    def feed(self, line: str) -> None:
        super().feed(line)
        m = _STEP.match(line)
        if m:
            self.ctx.progress(int(m.group(1)), int(m.group(2)))


async def run_blender_bake(params: BakeParams | VerifyBakeParams, ctx: RunContext) -> None:
    blender = need_program(NAME, ctx.programs.blender, "blender")
    blendfile = params["blendfile"]
    checked = bake_params(params)
    await need_blend_file(NAME, blendfile)
    argv = [
        blender,
        *blender_autoexec_args(),
        "-b",
        blendfile,
        "--python-exit-code",
        "1",
        "--python-expr",
        bake_expression(checked),
    ]
    ctx.log(escaped(f"running: {blender} -b {blendfile} --python-expr <{checked['target']} script>"))
    parser = _BakeOutput(ctx, None)
    status = await run_process(argv, parser.feed, grace_seconds=ctx.grace_seconds, started=ctx.started)
    reason = parser.failure(status)
    if reason:
        raise CommandFailed(reason.replace("Blender:", f"{NAME}:", 1))

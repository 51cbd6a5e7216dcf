"""Tablao's Blender add-on: a panel in Output properties that submits the open scene to a Tablao render farm.

Only Blender's own Python is used (urllib and json, in `farm.py`), so installing the zip is all it takes.
The Server URL and API token live in the add-on's preferences (Blender saves them in its userprefs.blend);
the job's settings live on the scene. No `from __future__ import annotations` here: Blender reads property
definitions from the class annotations at registration and needs them evaluated.
"""

from typing import Any

import bpy  # type: ignore[import-not-found]
from bpy.props import (  # type: ignore[import-not-found]
    BoolProperty,
    EnumProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import farm

bl_info = {
    "name": "Tablao",
    "author": "Tablao contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Output > Tablao",
    "description": "Submit the open scene to a Tablao render farm",
    "category": "Render",
}

# What the last action found, for the panel: a status line, field errors by property, the last job id.
STATE: dict[str, Any] = {"status": "", "level": "INFO", "errors": {}, "job_id": 0, "connection": ""}

JOB_TYPES = [
    ("animation", "Animation", "Render the frame range, a chunk of frames per task"),
    ("still", "Still", "Render the current frame split into tiles or sample chunks, then merge"),
    ("bake", "Simulation bake", "Bake a simulation's caches over the frame range"),
]


def _prefs(context: Any) -> Any:
    return context.preferences.addons[__package__].preferences


class TablaoPreferences(bpy.types.AddonPreferences):  # type: ignore[misc]
    bl_idname = __package__

    server_url: StringProperty(  # type: ignore[valid-type]
        name="Server URL", description="The Tablao Server, e.g. http://farm:8470", default="http://127.0.0.1:8470"
    )
    api_token: StringProperty(  # type: ignore[valid-type]
        name="API token",
        description="Your Tablao API token (`tablao tokens create USER`); Blender keeps it in its userprefs",
        subtype="PASSWORD",
    )

    def draw(self, context: Any) -> None:
        _draw_connection(self.layout, self)


class TablaoJobSettings(bpy.types.PropertyGroup):  # type: ignore[misc]
    job_name: StringProperty(name="Job name", description="Empty: the .blend file's name")  # type: ignore[valid-type]
    job_type: EnumProperty(name="Job type", items=JOB_TYPES, default="animation")  # type: ignore[valid-type]
    use_scene_frames: BoolProperty(  # type: ignore[valid-type]
        name="Scene frame range", description="Render the scene's own frame range", default=True
    )
    frame_start: IntProperty(name="Start", default=1)  # type: ignore[valid-type]
    frame_end: IntProperty(name="End", default=250)  # type: ignore[valid-type]
    chunk_size: IntProperty(  # type: ignore[valid-type]
        name="Chunk size", description="Frames per task (one Blender run)", default=1, min=1, max=10000
    )
    priority: IntProperty(name="Priority", default=50, min=0, max=100)  # type: ignore[valid-type]
    output_path: StringProperty(  # type: ignore[valid-type]
        name="Output",
        description="Where frames go; `#` marks the frame number. Farm path variables such as {render_root} "
        "are resolved by each worker",
        default="{render_root}/{blend}/frame_####",
    )
    preview_video: BoolProperty(name="Preview video", default=False)  # type: ignore[valid-type]
    tags: StringProperty(  # type: ignore[valid-type]
        name="Tags", description="Comma-separated worker tags the job requires"
    )
    still_split: EnumProperty(  # type: ignore[valid-type]
        name="Split by",
        items=[("tiles", "Tiles", "Split the image into tiles"), ("samples", "Samples", "Split the samples")],
    )
    tiles: IntProperty(name="Tiles across and down", default=2, min=1, max=16)  # type: ignore[valid-type]
    sample_chunks: IntProperty(name="Sample chunks", default=4, min=1, max=64)  # type: ignore[valid-type]
    bake_target: EnumProperty(  # type: ignore[valid-type]
        name="Simulation",
        items=[("point-cache", "Point caches", ""), ("fluid", "Fluid", ""), ("cloth", "Cloth", "")],
    )


def _row_error(layout: Any, prop: str) -> None:
    message = STATE["errors"].get(prop)
    if message:
        layout.label(text=message, icon="ERROR")


def _draw_connection(layout: Any, prefs: Any) -> None:
    layout.prop(prefs, "server_url")
    layout.prop(prefs, "api_token")
    row = layout.row()
    row.operator(TABLAO_OT_check_connection.bl_idname, icon="LINKED")
    if STATE["connection"]:
        row.label(text=STATE["connection"])


class TABLAO_PT_submit(bpy.types.Panel):  # type: ignore[misc]
    bl_label = "Tablao"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.use_property_split = True
        s = context.scene.tablao
        box = layout.box()
        _draw_connection(box, _prefs(context))
        layout.prop(s, "job_name")
        layout.prop(s, "job_type")
        if s.job_type in ("animation", "bake"):
            layout.prop(s, "use_scene_frames")
            if not s.use_scene_frames:
                col = layout.column(align=True)
                col.prop(s, "frame_start")
                col.prop(s, "frame_end")
            _row_error(layout, "frames")
        if s.job_type == "animation":
            layout.prop(s, "chunk_size")
            _row_error(layout, "chunk_size")
        if s.job_type == "still":
            layout.prop(s, "still_split")
            layout.prop(s, "tiles" if s.still_split == "tiles" else "sample_chunks")
            _row_error(layout, "tiles" if s.still_split == "tiles" else "sample_chunks")
        if s.job_type == "bake":
            layout.prop(s, "bake_target")
            _row_error(layout, "bake_target")
        else:
            layout.prop(s, "output_path")
            _row_error(layout, "output_path")
        if s.job_type == "animation":
            layout.prop(s, "preview_video")
        layout.prop(s, "priority")
        _row_error(layout, "priority")
        layout.prop(s, "tags")
        _row_error(layout, "tags")
        _row_error(layout, "blendfile")
        layout.operator(TABLAO_OT_submit.bl_idname, icon="RENDER_ANIMATION")
        if STATE["status"]:
            layout.label(text=STATE["status"], icon="ERROR" if STATE["level"] == "ERROR" else "INFO")
        if STATE["job_id"]:
            row = layout.row()
            row.operator(TABLAO_OT_open_job.bl_idname, icon="URL")
            row.operator(TABLAO_OT_copy_job_command.bl_idname, icon="COPYDOWN")


def _connection(context: Any) -> farm.Connection:
    prefs = _prefs(context)
    return farm.Connection(prefs.server_url, prefs.api_token)


def _fail(op: Any, message: str, fields: dict[str, str] | None = None) -> set[str]:
    STATE.update(status=message, level="ERROR", errors=fields or {})
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


class TABLAO_OT_check_connection(bpy.types.Operator):  # type: ignore[misc]
    """Ask the Tablao Server who this API token belongs to"""

    bl_idname = "tablao.check_connection"
    bl_label = "Check connection"

    def execute(self, context: Any) -> set[str]:
        try:
            name, role = farm.who_am_i(_connection(context))
        except farm.FarmError as exc:
            STATE["connection"] = "Not connected"
            return _fail(self, exc.message)
        STATE["connection"] = f"Connected as {name} ({role})"
        self.report({"INFO"}, STATE["connection"])
        return {"FINISHED"}


class TABLAO_OT_copy_job_command(bpy.types.Operator):  # type: ignore[misc]
    """Copy the command that shows the submitted job"""

    bl_idname = "tablao.copy_job_command"
    bl_label = "Copy `tablao job` command"

    def execute(self, context: Any) -> set[str]:
        context.window_manager.clipboard = f"tablao job {STATE['job_id']}"
        return {"FINISHED"}


class TABLAO_OT_open_job(bpy.types.Operator):  # type: ignore[misc]
    """Open the submitted job in the Tablao desktop app (through its tablao:// link)"""

    bl_idname = "tablao.open_job"
    bl_label = "Open in Tablao"

    def execute(self, context: Any) -> set[str]:
        bpy.ops.wm.url_open(url=farm.job_link(STATE["job_id"]))
        return {"FINISHED"}


def _image_format(scene: Any) -> str:
    fmt = str(scene.render.image_settings.file_format)
    return fmt if fmt in ("PNG", "JPEG", "OPEN_EXR", "TIFF") else "PNG"


def _request(context: Any, blendfile: str, output: str) -> farm.JobRequest:
    scene = context.scene
    s = scene.tablao
    start, end = (scene.frame_start, scene.frame_end) if s.use_scene_frames else (s.frame_start, s.frame_end)
    scale = scene.render.resolution_percentage / 100.0
    cycles = getattr(scene, "cycles", None)
    return farm.JobRequest(
        name=s.job_name.strip() or bpy.path.display_name_from_filepath(bpy.data.filepath),
        job_type=s.job_type,
        blendfile=blendfile,
        output_path=output,
        scene=scene.name,
        frame_start=start,
        frame_end=end,
        frame_step=scene.frame_step if s.use_scene_frames else 1,
        frame_current=scene.frame_current,
        chunk_size=s.chunk_size,
        fps=scene.render.fps / scene.render.fps_base,
        image_format=_image_format(scene),
        preview_video=s.preview_video,
        priority=s.priority,
        tags=farm.parse_tags(s.tags),
        still_split=s.still_split,
        tiles_x=s.tiles,
        tiles_y=s.tiles,
        samples=int(cycles.samples) if cycles is not None else 16,
        sample_chunks=s.sample_chunks,
        width=max(1, int(scene.render.resolution_x * scale)),
        height=max(1, int(scene.render.resolution_y * scale)),
        bake_target=s.bake_target,
    )


class TABLAO_OT_submit(bpy.types.Operator):  # type: ignore[misc]
    """Save the .blend and submit it to the Tablao farm"""

    bl_idname = "tablao.submit"
    bl_label = "Submit to Tablao"

    def execute(self, context: Any) -> set[str]:
        STATE.update(status="", errors={}, job_id=0)
        if not bpy.data.filepath:
            return _fail(self, "Save the .blend first: the farm renders the saved file", {"blendfile": "not saved"})
        # always saved: the farm renders the file on disk, and Blender does not mark every change as unsaved
        try:
            saved = bpy.ops.wm.save_mainfile()
        except RuntimeError as exc:
            return _fail(self, f"Could not save the .blend: {exc}", {"blendfile": "could not be saved"})
        if "FINISHED" not in saved:
            return _fail(self, "Could not save the .blend", {"blendfile": "could not be saved"})
        conn = _connection(context)
        try:
            variables = farm.farm_variables(conn)
            blendfile, output, note = self._farm_paths(context, variables)
            job = farm.submit(conn, farm.job_body(_request(context, blendfile, output)))
        except farm.FarmError as exc:
            return _fail(self, exc.message, exc.fields)
        job_id = int(job["id"])
        message = f"Submitted job {job_id}: {farm.open_hint(job_id)}{note}"
        STATE.update(status=message, level="INFO", job_id=job_id)
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def _farm_paths(self, context: Any, variables: dict[str, dict[str, str]]) -> tuple[str, str, str]:
        """The .blend and output as the farm will see them; FarmError when the farm cannot reach them."""
        s = context.scene.tablao
        blend = str(bpy.data.filepath)
        output = s.output_path.replace("{blend}", bpy.path.display_name_from_filepath(blend))
        if not output.startswith("{"):
            output = bpy.path.abspath(output)  # `//` is relative to the .blend
        if not variables:
            # a farm without shared variables (one machine): paths go as they are
            return blend, output, " (the Server publishes no path variables: paths were sent as they are)"
        platform = farm.current_platform()
        roots = farm.describe_roots(variables, platform)
        errors: dict[str, str] = {}
        farm_blend = farm.to_farm_path(blend, variables, platform)
        if farm_blend is None:
            errors["blendfile"] = f"{blend} is not in a folder the farm shares ({roots})"
        farm_output = output if s.job_type == "bake" else farm.to_farm_path(output, variables, platform)
        if farm_output is None:
            errors["output_path"] = f"not in a folder the farm shares ({roots})"
        if errors or farm_blend is None or farm_output is None:
            raise farm.FarmError("The farm cannot reach these files: " + "; ".join(errors.values()), errors)
        return farm_blend, farm_output, ""


CLASSES = (
    TablaoPreferences,
    TablaoJobSettings,
    TABLAO_OT_check_connection,
    TABLAO_OT_copy_job_command,
    TABLAO_OT_open_job,
    TABLAO_OT_submit,
    TABLAO_PT_submit,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.tablao = PointerProperty(type=TablaoJobSettings)


def unregister() -> None:
    del bpy.types.Scene.tablao
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

"""Run by Blender (with a window, under Xvfb): install the add-on, fill its panel, screenshot the Output tab.

The .blend it opens was saved with its Properties editors on the Output tab (setting the tab from a running
UI's timer finds no tab items); the editor is maximised, then the window is captured. The status lines are
set as they read after "Check connection" and a submission.
"""

import sys

import bpy  # type: ignore[import-not-found]

zip_path, out = sys.argv[sys.argv.index("--") + 1 :][:2]
bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
bpy.ops.preferences.addon_enable(module="tablao_submit")
import tablao_submit  # type: ignore[import-not-found]  # noqa: E402  (installed just above)

prefs = bpy.context.preferences.addons["tablao_submit"].preferences
prefs.server_url = "http://farm.example:8470"
prefs.api_token = "tbl_secret"
tablao_submit.STATE.update(
    connection="Connected as ana (artist)",
    status="Submitted job 42: open it with `tablao job 42` or tablao://job/42",
    job_id=42,
)
settings = bpy.context.scene.tablao
settings.job_name = "shot 010"
settings.output_path = "{render_root}/shot010/frame_####"
settings.chunk_size = 5
settings.preview_video = True
settings.tags = "gpu"


def maximise() -> None:
    win = bpy.context.window_manager.windows[0]
    area = next(a for a in win.screen.areas if a.type == "PROPERTIES")
    with bpy.context.temp_override(window=win, area=area, screen=win.screen):
        bpy.ops.screen.screen_full_area()


def shoot() -> None:
    win = bpy.context.window_manager.windows[0]
    area = max(win.screen.areas, key=lambda a: a.width * a.height)
    with bpy.context.temp_override(window=win, area=area, screen=win.screen):
        bpy.ops.screen.screenshot_area(filepath=out)
    bpy.ops.wm.quit_blender()


bpy.app.timers.register(maximise, first_interval=0.5)
bpy.app.timers.register(shoot, first_interval=3.5)

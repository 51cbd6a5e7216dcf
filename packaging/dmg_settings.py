# dmgbuild settings for Tablao.dmg (macOS only): the app and a link to /Applications to drag it onto.
# dmgbuild -s packaging/dmg_settings.py -D app=dist/Tablao.app "Tablao" dist/Tablao-VERSION.dmg
# ruff: noqa
import os.path

application = defines.get("app", "dist/Tablao.app")  # type: ignore[name-defined]  # noqa: F821
appname = os.path.basename(application)

format = "UDZO"
filesystem = "HFS+"
files = [application]
symlinks = {"Applications": "/Applications"}
icon = os.path.join(application, "Contents", "Resources", "tablao.icns")  # the volume's icon
icon_locations = {appname: (140, 120), "Applications": (500, 120)}
window_rect = ((100, 100), (640, 300))
default_view = "icon-view"
icon_size = 96

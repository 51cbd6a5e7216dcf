"""The Blender add-on's source (`tablao_submit/`); `resources.addon_zip` packs it into an installable zip."""

"""Blender script that builds Tablao's small animated sample scene and saves it as a .blend.

Run it with Blender itself (no binary .blend lives in the repository):

    blender -b --factory-startup --python resources/sample_scene.py -- OUT.blend [--frames N] [--size W H]

A cube moves and turns in front of a camera under a sun; Cycles on the CPU with few samples and no
denoising (Debian's Blender is built without OpenImageDenoise), so a 64×36 frame renders in a blink.
"""

import argparse
import math
import sys

import bpy  # type: ignore[import-not-found]


def parse(argv: list[str]) -> argparse.Namespace:
    args = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = argparse.ArgumentParser(prog="sample_scene.py")
    p.add_argument("output")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=(64, 36), metavar=("W", "H"))
    p.add_argument("--samples", type=int, default=2)
    return p.parse_args(args)


def build(frames: int, width: int, height: int, samples: int) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = "Scene"
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.fps = 24

    world = bpy.data.worlds.new("World")
    world.color = (0.05, 0.06, 0.08)
    scene.world = world

    bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, -1))
    bpy.ops.mesh.primitive_cube_add(size=1.5, location=(-2, 0, 0))
    cube = bpy.context.active_object
    cube.name = "Cube"
    material = bpy.data.materials.new("Orange")
    material.diffuse_color = (0.9, 0.35, 0.05, 1.0)
    material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.9, 0.35, 0.05, 1.0)
    cube.data.materials.append(material)
    for frame, x, turn in ((1, -2.0, 0.0), (max(frames, 2), 2.0, math.pi)):
        cube.location.x = x
        cube.rotation_euler.z = turn
        cube.keyframe_insert("location", frame=frame)
        cube.keyframe_insert("rotation_euler", frame=frame)

    cam_data = bpy.data.cameras.new("Camera")
    camera = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(camera)
    camera.location = (0, -9, 3)
    camera.rotation_euler = (math.radians(75), 0, 0)
    scene.camera = camera

    sun_data = bpy.data.lights.new("Sun", type="SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("Sun", sun_data)
    sun.rotation_euler = (math.radians(40), math.radians(20), 0)
    scene.collection.objects.link(sun)


def main() -> None:
    args = parse(sys.argv)
    build(args.frames, args.size[0], args.size[1], args.samples)
    bpy.context.preferences.filepaths.save_version = 0  # made again over the old one: no sample.blend1 beside it
    bpy.ops.wm.save_as_mainfile(filepath=args.output, compress=False)
    print(f"Tablao: saved sample scene {args.output} ({args.frames} frames, {args.size[0]}x{args.size[1]})")


main()

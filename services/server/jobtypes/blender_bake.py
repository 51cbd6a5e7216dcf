"""The `blender-bake` job type: one task per simulation cache, then a task that checks every cache."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.protocol.commands import BLENDER_BAKE, BakeParams, CacheEntry, TaskType, VerifyBakeParams
from services.server.jobtypes.base import (
    Capability,
    CompiledTask,
    JobContext,
    JobType,
    JobTypeSettings,
    SizeEstimate,
    measured,
)
from services.server.jobtypes.fields import (
    BlenderName,
    PathStr,
    blendfile_field,
    frame_end_not_before_start,
    invalid,
    name_field,
)

VERIFY_TASK = "verify-bake"


class CacheTarget(StrEnum):
    POINT_CACHE = "point-cache"
    FLUID = "fluid"
    CLOTH = "cloth"


class CacheSpec(BaseModel):
    """One cache to bake: a kind of simulation, optionally narrowed to one object's modifier."""

    model_config = ConfigDict(extra="forbid", title="Cache")

    target: CacheTarget = Field(title="Simulation", description="The kind of simulation to bake.")
    object: BlenderName | None = name_field("Object", "Object holding the simulation; empty: every object.")
    modifier: BlenderName | None = name_field("Modifier", "Modifier of that object; empty: every one.")

    @field_validator("modifier")
    @classmethod
    def _modifier_needs_object(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "object" in info.data and info.data["object"] is None:
            raise invalid("a modifier is named within an object: set `object` too")
        return value

    def describe(self) -> str:
        return "/".join(p for p in (self.target.value, self.object, self.modifier) if p)

    def covers(self, other: CacheSpec) -> bool:
        """Whether baking `self` also writes `other`'s cache (so both in parallel would collide)."""
        if self.target != other.target:
            return False
        if self.object is None or other.object is None:
            return True
        if self.object != other.object:
            return False
        return self.modifier is None or other.modifier is None or self.modifier == other.modifier


class BlenderBakeSettings(JobTypeSettings):
    model_config = ConfigDict(title="Blender bake")

    blendfile: PathStr = blendfile_field()
    caches: list[CacheSpec] = Field(
        min_length=1,
        max_length=100,
        title="Caches",
        description="Simulations to bake, each in its own task and in parallel; they must not overlap.",
    )
    frame_start: int = Field(1, ge=-1_000_000, le=1_000_000, title="First frame", description="First frame.")
    frame_end: int = Field(250, ge=-1_000_000, le=1_000_000, title="Last frame", description="Last frame.")

    @field_validator("caches")
    @classmethod
    def _no_overlap(cls, caches: list[CacheSpec]) -> list[CacheSpec]:
        for i, a in enumerate(caches):
            for b in caches[:i]:
                if b.covers(a) or a.covers(b):
                    raise invalid(
                        f"caches {b.describe()!r} and {a.describe()!r} overlap; two tasks would write the same cache"
                    )
        return caches

    _end_after_start = field_validator("frame_end")(frame_end_not_before_start)


class BlenderBake(JobType):
    name = "blender-bake"
    capability = Capability.PROGRAM
    label = "Blender bake"
    description = "Bake simulation caches (point caches, fluid, cloth) in parallel, then check them."
    Settings = BlenderBakeSettings

    def estimate(self, settings: Any) -> SizeEstimate:  # at most 101 tasks: built and measured
        return measured(self._tasks(BlenderBakeSettings.model_validate(settings)))

    def compile(self, ctx: JobContext, settings: Any) -> list[CompiledTask]:  # one task per cache: a list is fine
        return self._tasks(BlenderBakeSettings.model_validate(settings))

    @staticmethod
    def _tasks(s: BlenderBakeSettings) -> list[CompiledTask]:
        frames = s.frame_end - s.frame_start + 1
        tasks: list[CompiledTask] = []
        for cache in s.caches:
            parameters: BakeParams = {
                "blendfile": s.blendfile,
                "target": cache.target.value,
                "frame_start": s.frame_start,
                "frame_end": s.frame_end,
            }
            if cache.object is not None:
                parameters["object"] = cache.object
            if cache.modifier is not None:
                parameters["modifier"] = cache.modifier
            tasks.append(
                CompiledTask(
                    name=f"bake {cache.describe()}",
                    type=TaskType.BLENDER.value,
                    commands=[BLENDER_BAKE(parameters)],
                    steps_total=frames,
                )
            )
        caches: list[CacheEntry] = [
            {"target": c.target.value, "object": c.object, "modifier": c.modifier} for c in s.caches
        ]
        verify: VerifyBakeParams = {
            "blendfile": s.blendfile,
            "target": "verify",
            "caches": caches,
            "frame_start": s.frame_start,
            "frame_end": s.frame_end,
        }
        tasks.append(
            CompiledTask(
                name=VERIFY_TASK,
                type=TaskType.BLENDER.value,
                commands=[BLENDER_BAKE(verify)],
                depends_on=range(len(tasks)),
            )
        )
        return tasks

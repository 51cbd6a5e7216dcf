"""What the job details view shows, worked out without Qt: settings with the farm's path variables resolved for
this machine, where a job's output goes, durations in words, and the submission that clones a job."""

from __future__ import annotations

import re
from typing import Any

from services.protocol.jobs import Job
from services.protocol.tags import normal_tag

_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")

# the setting whose folder holds a job type's output; blender-bake writes its caches beside the .blend file
OUTPUT_SETTING = {
    "blender-render": "output_path",
    "blender-still": "output_path",
    "ffmpeg-encode": "output_path",
    "blender-bake": "blendfile",
    "exec": "cwd",
}

# the fields of a submission beside name, type, priority and settings (docs/api.md, POST /jobs)
EXTRA_FIELDS = ("tags", "manager_id", "depends_on", "max_task_failures", "on_task_failure")


def variable_values(variables: dict[str, dict[str, str]], platform: str) -> dict[str, str]:
    """Each path variable's value on `platform` (or its value for all platforms); variables without one are left
    out, so their `{name}` stays as it is."""
    out = {}
    for name, table in variables.items():
        value = table.get(platform, table.get("all"))
        if value:
            out[name] = value
    return out


def resolve(value: Any, values: dict[str, str]) -> Any:
    """`value` with every `{name}` of a known variable replaced, in strings, lists and dict values, as the
    Worker does on its platform (services/worker/variables.py)."""
    if isinstance(value, str):
        return _BRACED.sub(lambda m: values.get(m.group(1), m.group(0)), value) if "{" in value else value
    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, values) for k, v in value.items()}
    return value


def folder_of(path: str) -> str:
    """The folder part of a path written for any platform (`/` or `\\`); the path itself when it has none."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


def output_location(job_type: str, settings: dict[str, Any]) -> str | None:
    """The folder a job writes its output to, as it is written in its settings (maybe with variables)."""
    key = OUTPUT_SETTING.get(job_type)
    value = settings.get(key) if key else None
    return folder_of(value) if isinstance(value, str) and value else None


def duration(seconds: float | None) -> str:
    """`12.3 s`, `4m 05s`, `2h 07m`; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def clone_submission(job: Job) -> dict[str, Any]:
    """The submission that makes this job again: its type, settings and the fields beside them."""
    return {
        "name": job.name,
        "type": job.type,
        "settings": job.settings,
        "priority": job.priority,
        "tags": [normal_tag(t) for t in job.tags],  # as a worker has it now (one stored before the rule)
        "manager_id": job.manager_id,
        "depends_on": list(job.depends_on),
        "max_task_failures": job.max_task_failures,
        "on_task_failure": job.on_task_failure.value,
    }

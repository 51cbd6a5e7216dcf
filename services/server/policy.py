"""The farm's trust policy at submission: who may submit which job type, and where outputs may go.

Job types carry a capability: `command` (runs whatever program the submitter names, e.g. `exec`) or
`program` (runs known programs with checked settings, e.g. `blender-render`). By default artists may submit
`program` job types only; wranglers and admins may submit both. A TOML file (`--policy`, or `policy.toml`
in the Server's data directory) changes that per capability or per job type, and names the output roots:

    [submit]
    command = ["wrangler", "admin"]
    program = ["artist", "wrangler", "admin"]
    [submit.job_types]
    exec = ["admin"]
    [outputs]
    roots = ["{render_root}", "/srv/renders"]
    [priority]
    artist = 60

`[priority]` caps the priority (0 – 100) each role may give a job, at submission or later; none by default.
Lowering a job's priority is always allowed, so an artist may lower her job a wrangler raised.

Every table, key and job type the file names must be known (a job type from a plug-in too): a misspelt one
(`[sumbit]`, `Exec = []`) would leave the farm as it was while its admin believes it changed.

Paths are checked as text here (the Server never sees the workers' disks); each worker checks them again
after path variables and symbolic links are resolved (services/worker/output_roots.py).
"""

from __future__ import annotations

import difflib
import functools
import posixpath
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.protocol.jobs import PRIORITY_MAX
from services.protocol.named_files import MIB, UnreadableFile, read_named_text
from services.protocol.states import Role
from services.server.jobtypes.base import Capability, JobType
from services.server.jobtypes.registry import get_job_type, registered_names
from services.server.store.errors import Forbidden, Invalid

DEFAULT_ROLES: dict[Capability, frozenset[Role]] = {
    Capability.COMMAND: frozenset({Role.WRANGLER, Role.ADMIN}),
    Capability.PROGRAM: frozenset({Role.ARTIST, Role.WRANGLER, Role.ADMIN}),
}
_DRIVE = re.compile(r"^[A-Za-z]:/")
_SUBMIT_KEYS = (*(c.value for c in Capability), "job_types")
_OUTPUTS_KEYS = ("roots",)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class FarmPolicy:
    capability_roles: Mapping[Capability, frozenset[Role]] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    job_type_roles: Mapping[str, frozenset[Role]] = field(default_factory=dict)
    output_roots: tuple[str, ...] = ()
    priority_caps: Mapping[Role, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, extra_roots: Iterable[str] = ()) -> FarmPolicy:
        try:
            raw = tomllib.loads(read_named_text(path, MIB, "a farm policy (TOML)"))
        except (UnreadableFile, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: {exc}") from exc
        except RecursionError:  # tomllib reads nested arrays recursively
            raise PolicyError(f"{path}: nested too deeply to be a farm policy") from None
        return cls.from_dict(raw, str(path), extra_roots)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "policy", extra_roots: Iterable[str] = ()) -> FarmPolicy:
        _known_keys(raw, ("submit", "outputs", "priority"), where, "", what="table")
        submit = _table(raw, "submit", where, "[submit] with command, program and job_types")
        _known_keys(submit, _SUBMIT_KEYS, where, "submit")
        capability_roles = dict(DEFAULT_ROLES)
        for cap in Capability:
            if cap.value in submit:
                capability_roles[cap] = _roles(submit[cap.value], f"{where}: submit.{cap.value}")
        per_type = submit.get("job_types", {})
        if not isinstance(per_type, dict):
            raise PolicyError(f"{where}: submit.job_types must be a table of job type = [roles]")
        _known_keys(per_type, registered_names(), where, "submit.job_types", what="job type")
        job_type_roles = {name: _roles(v, f"{where}: submit.job_types.{name}") for name, v in per_type.items()}
        outputs = _table(raw, "outputs", where, "[outputs] with roots = [folders]")
        _known_keys(outputs, _OUTPUTS_KEYS, where, "outputs")
        roots = outputs.get("roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) and r.strip() for r in roots):
            raise PolicyError(f"{where}: outputs.roots must be a list of folder paths")
        caps = _table(raw, "priority", where, "[priority] with role = highest priority, e.g. artist = 60")
        _known_keys(caps, [r.value for r in Role], where, "priority", what="role")
        for role, cap in caps.items():
            if type(cap) is not int or not 0 <= cap <= PRIORITY_MAX:
                raise PolicyError(f"{where}: priority.{role} must be a whole number from 0 to {PRIORITY_MAX}")
        priority_caps = {Role(role): cap for role, cap in caps.items()}
        roots_all = tuple(dict.fromkeys([*roots, *extra_roots]))
        return cls(capability_roles, job_type_roles, roots_all, priority_caps)

    def roles_for(self, name: str, job_type: JobType) -> frozenset[Role]:
        if name in self.job_type_roles:
            return self.job_type_roles[name]
        return self.capability_roles[job_type.capability]

    def check_submission(
        self, name: str, job_type: JobType, settings: Mapping[str, Any], role: Role, doing: str = "submitted"
    ) -> None:
        """Forbidden (403) when the role may not submit this job type; Invalid (422) for an output path outside."""
        allowed = self.roles_for(name, job_type)
        if role not in allowed:
            who = " or ".join(sorted(allowed)) or "nobody"
            raise Forbidden(
                f"job type {name!r} ({job_type.capability} capability) may be {doing} by {who} on this farm; "
                f"you are {role}",
                field="type",
            )
        if not self.output_roots:
            return
        for key in output_fields(job_type):
            value = settings.get(key)
            if isinstance(value, str) and value.strip() and not under_roots(value, self.output_roots):
                raise Invalid(
                    f"{value!r} is outside the farm's output roots ({', '.join(self.output_roots)})",
                    field=f"settings.{key}",
                )

    def highest_priority(self, priority: int, role: Role) -> int:
        """`priority`, or the role's cap when that is lower."""
        return min(priority, self.priority_caps.get(role, priority))

    def check_priority(self, priority: int, role: Role, current: int | None = None) -> None:
        """Forbidden (403) naming `priority` when `role` may not give a job this priority (`current`: the job's
        now, for a change: lowering it, or keeping it, is always allowed)."""
        cap = self.priority_caps.get(role)
        if cap is None or priority <= cap or (current is not None and priority <= current):
            return
        raise Forbidden(
            f"on this farm the {role} role may give a job priority {cap} at most (asked: {priority})", field="priority"
        )

    def check_run_again(self, name: str, settings: Mapping[str, Any], role: Role) -> None:
        """As check_submission, for a job's tasks made runnable again (requeued, resumed): what a role may not
        submit today (the policy tightened since, the user demoted since) it may not run again either. A job
        type no longer on the farm has nothing to check: its tasks can only fail."""
        job_type = get_job_type(name)
        if job_type is not None:
            self.check_submission(name, job_type, settings, role, doing="submitted or run again")


def _table(raw: Mapping[str, Any], key: str, where: str, shape: str) -> Mapping[str, Any]:
    """raw[key] when it is a table ({} when absent); `submit = "admin"` is a PolicyError saying the shape."""
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {key} must be a table ({shape}), not {type(value).__name__}")
    return value


def _known_keys(table: Mapping[str, Any], known: Iterable[str], where: str, inside: str, what: str = "key") -> None:
    """PolicyError naming the first key of `table` (the table `inside`, "" for the file) not among `known`, and
    the likeliest one meant."""
    names = sorted(known)
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key.lower(), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            # repr: a quoted TOML key may hold anything, a line break included
            place = f"{inside}: " if inside else ""
            raise PolicyError(f"{where}: {place}{key!r} is not a known {what} (known: {', '.join(names)}){hint}")


def _roles(value: Any, where: str) -> frozenset[Role]:
    valid = {r.value for r in Role}
    if not isinstance(value, list) or not all(isinstance(v, str) and v in valid for v in value):
        raise PolicyError(f"{where} must be a list of roles among {', '.join(sorted(valid))}")
    return frozenset(Role(v) for v in value)


def output_fields(job_type: JobType | type[JobType]) -> tuple[str, ...]:
    """The settings a job type writes to: path fields the form offers to save (`x-path-mode: save`)."""
    return _output_fields(job_type if isinstance(job_type, type) else type(job_type))


@functools.cache
def _output_fields(job_type: type[JobType]) -> tuple[str, ...]:
    # a job type's settings schema depends on its class alone, and building it is most of a small job's checks
    props = job_type.settings_schema().get("properties", {})
    return tuple(name for name, spec in props.items() if _is_save_path(spec))


def _is_save_path(spec: Mapping[str, Any]) -> bool:
    if spec.get("x-path-mode") == "save":
        return True
    return any(isinstance(alt, dict) and alt.get("x-path-mode") == "save" for alt in spec.get("anyOf", []))


def _normal(path: str) -> str:
    """Separators as `/`, `.` and `..` folded away, so `{render_root}/../x` cannot pass as under a root."""
    text = path.strip().replace("\\", "/")
    drive = bool(_DRIVE.match(text))
    folded = posixpath.normpath(text)
    if drive:  # Windows paths compare without regard to case
        folded = folded.lower()
    return folded


def under_roots(path: str, roots: Iterable[str]) -> bool:
    p = _normal(path)
    if not (p.startswith("/") or p.startswith("{") or _DRIVE.match(p)):
        return False  # relative: it would land wherever the worker happens to run
    for root in roots:
        r = _normal(root).rstrip("/") or "/"
        if p == r or p.startswith(r if r.endswith("/") else r + "/"):
            return True
    return False

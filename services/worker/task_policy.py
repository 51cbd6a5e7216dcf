"""What a task's processes may see and touch on this worker, and how the process wrapper applies it.

The agent sets the worker's `TaskPolicy` for its run and each task sets its path variables; both travel in
context variables, so the process wrapper (runners/process.py) needs one call, `prepare()`, to get the
scrubbed environment and the function the child runs before exec (Landlock, optionally another user).
"""

from __future__ import annotations

import contextvars
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from services.worker import landlock, leftovers, output_roots
from services.worker.task_env import task_environment

log = logging.getLogger("tablao.worker.policy")


@dataclass(frozen=True, slots=True)
class TaskPolicy:
    """The farm's rules for tasks on this worker (flags of `tablao worker`)."""

    # inherited environment variables tasks may see, besides task_env.DEFAULT_ALLOW (fnmatch patterns)
    env_allow: tuple[str, ...] = ()
    # where commands may write; path variables allowed (`{render_root}`); empty: anywhere not protected
    output_roots: tuple[str, ...] = ()
    # files and folders no task may read or write: the worker adds its data directory and secret file
    protect: tuple[Path, ...] = ()
    # Blender may run Python scripts stored in blend files (off: `--disable-autoexec`)
    blender_autoexec: bool = False
    # Landlock on Linux; False runs tasks unconfined (and says so in the worker's log)
    confine: bool = True
    # run task processes as this OS user (the worker must be root to switch)
    run_as: str | None = None
    # where each process gets a private temporary folder (inside a protected folder, opened as a hole)
    scratch_dir: Path | None = None
    # the file mode mask task processes start with (the worker itself runs with 077); None: inherit
    umask: int | None = None
    # the mark every task process carries in its environment, so a later start of this worker ends what a task
    # left running when the worker was killed outright (leftovers.py); None: unmarked
    mark: str | None = None


_POLICY: contextvars.ContextVar[TaskPolicy | None] = contextvars.ContextVar("tablao_task_policy", default=None)
_VARIABLES: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("tablao_task_vars", default=None)
_DEFAULT = TaskPolicy()


def default_protected() -> list[Path]:
    """Where a shared-user machine keeps Tablao's secrets and the desktop keyring's files."""
    from platformdirs import user_config_dir, user_data_dir

    places = [Path(user_data_dir("tablao", appauthor=False)), Path(user_config_dir("tablao", appauthor=False)),
              Path(user_data_dir("keyrings", appauthor=False))]  # fmt: skip
    if configured := os.environ.get("TABLAO_DATA_DIR"):
        places.append(Path(configured))
    return places


def effective_policy(policy: TaskPolicy, data_dir: Path) -> TaskPolicy:
    """The policy with the worker's own data directory (credentials, buffer) and the defaults protected."""
    protect = (*policy.protect, data_dir, *default_protected())
    return replace(
        policy,
        protect=tuple(dict.fromkeys(protect)),
        scratch_dir=policy.scratch_dir or data_dir / "scratch",
        mark=leftovers.mark_of(data_dir),
    )


def use_policy(policy: TaskPolicy) -> None:
    """For the calling context and tasks created from it (the agent's run)."""
    _POLICY.set(policy)


def use_variables(variables: Mapping[str, str]) -> None:
    """The running task's path variables, for output roots written with them; called as each task starts."""
    _VARIABLES.set(dict(variables))


def current() -> TaskPolicy:
    return _POLICY.get() or _DEFAULT


def resolved_roots() -> list[Path]:
    return output_roots.resolve_roots(current().output_roots, _VARIABLES.get() or {})


def output_problem(command: str, params: Mapping[str, Any]) -> str | None:
    """The worker-side output-root check of a command's written paths (None when fine or no roots are set)."""
    if not current().output_roots or not output_roots.written_paths(command, params):
        return None  # resolving the roots costs a few stat calls per task; a command writing nothing needs none
    return output_roots.problem(command, params, resolved_roots(), current().protect)


def make_output_folders(command: str, params: Mapping[str, Any]) -> None:
    """Create the folders a command's new files go to, outside protected folders (call after `output_problem`
    said none). Confined, the program could not make them itself; unconfined, some (ffmpeg) do not."""
    for folder in output_roots.folders_to_make(command, params, current().protect):
        if current().confine:
            forget_rulesets()  # a cached ruleset would not know the new folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the command reports it in its own words
            log.debug("cannot make %s: %s", folder, exc)


def blender_autoexec_args() -> list[str]:
    """Blender's flag for scripts stored in blend files; must come before the blend file on the command line."""
    return ["--enable-autoexec"] if current().blender_autoexec else ["--disable-autoexec"]


_warned_unconfined = False


@dataclass(slots=True)
class Prepared:
    """What run_process passes to the child: its environment, a pre-exec hook and extra spawn options."""

    env: dict[str, str]
    base_env: dict[str, str] = field(default_factory=dict)  # `env` before the process's own additions
    preexec: Callable[[], None] | None = None
    spawn: dict[str, Any] = field(default_factory=dict)
    ruleset: landlock.Ruleset | None = None  # the confinement, for a runner that applies it another way
    _scratch: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        self.ruleset = None  # shared through the cache: its descriptor closes when the last user lets go
        if self._scratch is not None:
            self._scratch.cleanup()


def prepare(extra_env: Mapping[str, str] | None) -> Prepared:
    """Build the child's environment and confinement; blocking (walks folders), so call it off the loop."""
    policy = current()
    base_env = task_environment(os.environ, extra_env, policy.env_allow)
    env = dict(base_env)
    if policy.mark is not None:
        env[leftovers.MARK] = policy.mark
    prepared = Prepared(env, base_env)
    if policy.umask is not None and sys.platform != "win32":
        prepared.spawn["umask"] = policy.umask
    if policy.run_as and sys.platform != "win32":
        _run_as(policy.run_as, prepared)
    if not policy.confine or sys.platform == "win32":
        return prepared
    if landlock.abi_version() < 1:
        _warn_unconfined("this kernel has no Landlock")
        return prepared
    parent = _scratch_parent(policy)
    if parent is not None:
        # a process the task left behind may still write there: removing what it can is enough
        scratch = tempfile.TemporaryDirectory(prefix="task-", dir=parent, ignore_cleanup_errors=True)
        prepared._scratch = scratch
        for name in ("TMPDIR", "TEMP", "TMP"):
            env[name] = scratch.name
        if policy.run_as:
            shutil.chown(scratch.name, user=policy.run_as)
    try:
        prepared.ruleset = _ruleset(policy, parent)
    except landlock.LandlockError as exc:
        _warn_unconfined(str(exc))
        return prepared
    prepared.preexec = prepared.ruleset.restrict_self
    return prepared


def confines_as_now(ruleset: landlock.Ruleset | None) -> bool:
    """`ruleset` (None: unconfined) is the confinement `prepare` would give a process now. Asks the cache only
    (a few stat calls): building a ruleset walks folders, which is for the thread that starts a process."""
    return still_confines(ruleset)()


def still_confines(ruleset: landlock.Ruleset | None) -> Callable[[], bool]:
    """`confines_as_now` to ask later, from any thread: the policy, the task's variables and so its output
    roots are taken now (resolving the roots is most of the cost); the call asks only whether `ruleset` is
    still the valid cached one (no folder appeared in or vanished from what it lists, not expired)."""
    policy = current()
    if not policy.confine or sys.platform == "win32" or landlock.abi_version() < 1:
        unconfined = ruleset is None
        return lambda: unconfined
    if ruleset is None:
        return lambda: False  # made unconfined where confinement is asked for: a start now may confine
    key = _ruleset_key(policy, _scratch_parent_path(policy))

    def check() -> bool:
        with _rulesets_lock:
            return _cached_by_key(key) is ruleset

    return check


def _scratch_parent_path(policy: TaskPolicy) -> Path | None:
    if policy.scratch_dir is None:
        return None
    # another user cannot enter the worker's 0700 data directory: its scratch goes to the system's
    return Path(tempfile.gettempdir()) / f"tablao-{policy.run_as}-scratch" if policy.run_as else policy.scratch_dir


def _scratch_parent(policy: TaskPolicy) -> Path | None:
    """The folder each process's private temporary folder is made in (one grant covers them all)."""
    parent = _scratch_parent_path(policy)
    if parent is None:
        return None
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if policy.run_as:
        _take_shared_scratch(parent, policy.run_as)
    return parent


def _take_shared_scratch(parent: Path, run_as: str) -> None:
    """The run-as user's scratch parent lives in the system's shared temporary folder, where anyone may have
    made it first: use it only when it is a real folder of ours or that user's, then make it that user's, 0700
    (a world-writable one would let any user swap a task's temporary folder for their own)."""
    import pwd

    st = parent.lstat()
    owners = {os.geteuid(), pwd.getpwnam(run_as).pw_uid}
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in owners:
        what = "not a folder" if not stat.S_ISDIR(st.st_mode) else f"owned by another user (uid {st.st_uid})"
        raise PermissionError(
            f"{parent} is {what}: the worker will not put tasks' temporary files there; remove it and try again"
        )
    parent.chmod(0o700)
    shutil.chown(parent, user=run_as)


# Building a ruleset walks the folders on the way to protected ones (tens of milliseconds with a busy /tmp),
# too slow to do for every task of short tasks. A ruleset is reused while none of the folders it listed has
# changed (their modification times, a few stat calls): an entry made beside a protected folder since (a new
# shot's output folder) changes its parent's time, and the next task gets a ruleset that grants it. Entries
# made inside a granted folder are covered by that grant already. A ruleset is rebuilt after a while anyway.
_RULESET_SECONDS = 300.0
_rulesets: dict[tuple[object, ...], tuple[float, landlock.Ruleset, dict[Path, int]]] = {}
_rulesets_lock = threading.Lock()


def forget_rulesets() -> None:
    with _rulesets_lock:
        _rulesets.clear()


def _ruleset_key(policy: TaskPolicy, scratch: Path | None) -> tuple[object, ...]:
    return policy.protect, tuple(resolved_roots()), scratch


def _cached_ruleset(policy: TaskPolicy, scratch: Path | None) -> landlock.Ruleset | None:
    """The cached ruleset for this policy, roots and scratch folder while still valid (hold the lock)."""
    return _cached_by_key(_ruleset_key(policy, scratch))


def _cached_by_key(key: tuple[object, ...]) -> landlock.Ruleset | None:
    cached = _rulesets.get(key)
    if cached is not None and time.monotonic() - cached[0] < _RULESET_SECONDS and _unchanged(cached[2]):
        return cached[1]
    return None


def _ruleset(policy: TaskPolicy, scratch: Path | None) -> landlock.Ruleset:
    with _rulesets_lock:
        if (cached := _cached_ruleset(policy, scratch)) is not None:
            return cached
        scanned: dict[Path, int] = {}
        ruleset = landlock.Ruleset(_grants(policy, str(scratch) if scratch else None, scanned))
        _rulesets[_ruleset_key(policy, scratch)] = (time.monotonic(), ruleset, scanned)
        return ruleset


def _unchanged(scanned: dict[Path, int]) -> bool:
    """No entry was added to or removed from the folders a ruleset listed."""
    try:
        return all(folder.stat().st_mtime_ns == stamp for folder, stamp in scanned.items())
    except OSError:
        return False


def _run_as(user: str, prepared: Prepared) -> None:
    """Start the process as `user`: its uid, primary and supplementary groups, and its own HOME."""
    import pwd

    entry = pwd.getpwnam(user)
    prepared.spawn.update(
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=os.getgrouplist(entry.pw_name, entry.pw_gid)
    )
    prepared.env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)


def _grants(policy: TaskPolicy, scratch: str | None, scanned: dict[Path, int]) -> list[landlock.Grant]:
    protected = sorted({Path(os.path.realpath(p)) for p in policy.protect})
    roots = resolved_roots()
    everything = ~0
    if roots:
        for root in roots:
            root.mkdir(parents=True, exist_ok=True)
        # read everywhere not protected; write only in the roots, the private scratch folder and /dev
        grants = landlock.cover(Path("/"), protected, landlock.READ | landlock.IOCTL_DEV, scanned)
        writable = [*roots, Path("/dev")]
    else:
        grants = landlock.cover(Path("/"), protected, everything, scanned)
        writable = []
    if scratch is not None:
        writable.append(Path(os.path.realpath(scratch)))
    for place in writable:
        # a root inside a protected folder is a hole in it; protected files inside a root stay shut
        grants += landlock.cover(place, [p for p in protected if p != place], everything, scanned)
    return grants


def _warn_unconfined(why: str) -> None:
    global _warned_unconfined
    if not _warned_unconfined:
        _warned_unconfined = True
        log.warning("tasks run unconfined (%s): they can read this user's files, secrets included", why)

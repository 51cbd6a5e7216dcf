"""The environment a task's process gets: an allow-list of the worker's variables, never a loader or a secret.

A task inherits only the variables the allow-list names (the defaults below plus what the farm adds with
`--env-allow`). Whatever a job asks for or the farm allows, variables that change how programs load
(LD_PRELOAD, DYLD_*, PYTHONPATH, ...) and anything that looks like a Tablao internal or a secret are
dropped, so a job cannot take over the programs the worker runs nor read a service's credentials.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Inherited by default: what programs need to find themselves, their locale and a temporary folder.
DEFAULT_ALLOW: tuple[str, ...] = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "SHELL",
    "TMPDIR", "TEMP", "TMP", "OCIO", "DISPLAY",
    # Windows needs these to start programs at all
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
    "PROGRAMDATA", "PROGRAMFILES", "PROGRAMFILES(X86)", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
)  # fmt: skip

# Never passed on, not even when a job sets them: they change which code a program loads or runs, or they
# are ours (TABLAO_* holds tokens and internals; RENDER_FARM_TASK is the worker's mark on its tasks' processes,
# leftovers.py).
_DENIED_PATTERNS: tuple[str, ...] = (
    "LD_*", "DYLD_*", "_RLD*", "LIBPATH", "SHLIB_PATH", "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES",
    "LOCPATH", "MALLOC_*", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPPREFIX",
    "PYTHON*", "PERL5*", "PERLLIB", "PERLIO_DEBUG", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS", "NODE_PATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH", "BASH_ENV", "ENV", "BASH_FUNC_*", "SHELLOPTS",
    "PS4", "IFS", "BLENDER_SYSTEM_SCRIPTS", "BLENDER_USER_SCRIPTS", "BLENDER_SYSTEM_PYTHON",
    "QT_PLUGIN_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH", "OCIO_*", "GTK_MODULES", "GIO_EXTRA_MODULES",
    "TABLAO_*", "RENDER_FARM_TASK", "PYTHON_KEYRING_*", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
)  # fmt: skip
_SECRET_WORDS = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH", re.IGNORECASE)


@functools.cache
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression for a set of case-insensitive shell patterns (a task start checks every
    inherited variable against them: one match each instead of one fnmatch per pattern)."""
    return re.compile("|".join(fnmatch.translate(p.upper()) for p in patterns))


def denied(name: str) -> bool:
    """Whether `name` may never reach a task, whatever the job or the allow-list says."""
    return bool(_matcher(_DENIED_PATTERNS).match(name.upper())) or bool(_SECRET_WORDS.search(name))


def _allowed(name: str, allow: tuple[str, ...]) -> bool:
    return bool(_matcher(allow).match(name.upper()))


def task_environment(
    inherited: Mapping[str, str], extra: Mapping[str, str] | None = None, allow: Iterable[str] = ()
) -> dict[str, str]:
    """The variables for a task: allowed inherited ones, then the job's own, minus the denied names."""
    env = _inherited(inherited, (*DEFAULT_ALLOW, *allow))
    for key, value in (extra or {}).items():
        if not denied(key):
            env[key] = value
    return env


# os.environ's raw variables when last filtered, the patterns, and what passed
_last: tuple[dict[Any, Any], tuple[str, ...], dict[str, str]] | None = None


def _inherited(inherited: Mapping[str, str], patterns: tuple[str, ...]) -> dict[str, str]:
    """The inherited variables the patterns allow. The worker's own environment is filtered again only when it
    has changed: decoding and matching each of its variables is about a tenth of a millisecond per task start,
    comparing its raw copy a microsecond."""
    global _last
    # CPython keeps os.environ's variables, encoded, in a plain dict: comparing it needs no decoding
    raw = getattr(inherited, "_data", None) if inherited is os.environ else None
    if not isinstance(raw, dict):
        raw = None
    last = _last
    if raw is not None and last is not None and last[1] == patterns and last[0] == raw:
        return dict(last[2])
    env = {k: v for k, v in inherited.items() if _allowed(k, patterns) and not denied(k)}
    if raw is not None:
        _last = (dict(raw), patterns, dict(env))
    return env


def refused(extra: Mapping[str, str] | None) -> list[str]:
    """The names in a job's own variables that `task_environment` drops (for the task log)."""
    return sorted(k for k in (extra or {}) if denied(k))

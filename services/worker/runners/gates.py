"""The shell scripts that hold a started process before its program, and the probe that says they can be used.

A gate is `sh`, started confined and waiting on a pipe the worker keeps (runners/thread_spawn.py); it becomes
the program when the worker writes to the pipe, and ends without running anything when the pipe closes
unwritten (the worker let go of it, or died). Two kinds:

- the prefetched task's gate (runners/warm_start.py) knows its program from the start and waits for a word;
- the spare's gate (runners/spare.py), held by an idle worker before any task is known, reads the program's
  whole command line from the pipe: the argument count, then per argument its count of lines and those lines
  (an argument may hold newlines). The words are read with `read -r` and only ever expanded in double quotes
  (`set -- "$@" "$word"`, `exec "$@"`), so nothing in them is parsed as shell.

A first word "after" (prefetched gates only) says: start once the process before has ended, that is once its
baton (the standard error meanwhile) reads as ended, and then only on a second line, which the worker can still
read back itself to take its word back (`sh` reads a byte at a time, so one of the two gets the last byte). The
program's input is /dev/null and its standard error is merged into its output, as a program started at once has.

The program must see the environment a direct start gives it, and a shell changes some of its variables (dash
sets and exports PWD, sets PPID; IFS it resets too, but no task gets IFS, task_env.py): each of those is put back
as the environment had it, or removed, before the exec. A variable whose name is not a shell name the shell
drops, and OPTIND it resets and takes back only as a number it accepts: such an environment is not held. The
gates keep their words in variables of their own (`tablao_gate_*`), which no environment they hold may have
(the shell would export the gate's value in its place) and task_env denies to every task (TABLAO_*).
"""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import subprocess
from collections.abc import Mapping, Sequence

_SHELL_VARIABLES = ("PWD", "OLDPWD", "SHLVL", "PPID")
_OWN_PREFIX = "tablao_gate_"
GATE_WORD = _OWN_PREFIX + "word"
_ARGS, _LINES, _ARG = _OWN_PREFIX + "args", _OWN_PREFIX + "lines", _OWN_PREFIX + "arg"

_RESTORE = (
    "".join(
        f'if [ "${n}" = - ]; then unset {v}; else {v}=${{{n}#+}}; export {v}; fi; '
        for n, v in enumerate(_SHELL_VARIABLES, 1)
    )
    + f"shift {len(_SHELL_VARIABLES)}; "
)
_EXEC = 'exec "$@" </dev/null 2>&1'

_PREFETCHED_SCRIPT = (
    f"read -r {GATE_WORD} || exit; "
    f'if [ "${GATE_WORD}" = after ]; then while read -r {GATE_WORD} <&2; do :; done; read -r {GATE_WORD} || exit; fi; '
    + _RESTORE
    + _EXEC
)
_SPARE_SCRIPT = (
    f"read -r {_ARGS} || exit; " + _RESTORE + f'while [ "${_ARGS}" -gt 0 ]; do '
    f"read -r {_LINES} || exit; IFS= read -r {_ARG} || exit; "
    f'while [ "${_LINES}" -gt 1 ]; do IFS= read -r {GATE_WORD} || exit; {_ARG}="${_ARG}\n${GATE_WORD}"; '
    f"{_LINES}=$(({_LINES} - 1)); done; "
    f'set -- "$@" "${_ARG}"; {_ARGS}=$(({_ARGS} - 1)); done; ' + _EXEC
)
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def prefetched(env: Mapping[str, str]) -> list[str]:
    """The prefetched gate's command line, to which the program's is added; ValueError for an environment the
    shell cannot hand on as it is (the process is then started directly)."""
    return [_shell(), "-c", _PREFETCHED_SCRIPT, "tablao-gate", *_kept(env)]


def spare(env: Mapping[str, str]) -> list[str]:
    """The spare's gate's whole command line (its program comes through the pipe, `spare_message`)."""
    return [_shell(), "-c", _SPARE_SCRIPT, "tablao-spare", *_kept(env)]


def spare_message(argv: Sequence[str]) -> bytes | None:
    """What the spare's gate reads to become `argv`; None when it cannot say it (nothing to run, a NUL byte,
    which no command line can hold, or longer than one write the pipe takes whole)."""
    parts = [b"%d" % len(argv)]
    for arg in argv:
        lines = os.fsencode(arg).split(b"\n")
        parts += [b"%d" % len(lines), *lines]
    message = b"\n".join(parts) + b"\n"
    if not argv or b"\0" in message or len(message) > select.PIPE_BUF:
        return None
    return message


def _kept(env: Mapping[str, str]) -> list[str]:
    """ "-" for each shell-set variable the environment lacks, "+value" for one it has."""
    if dropped := [name for name in env if not _SHELL_NAME.match(name) or name == "OPTIND" or _own(name)]:
        raise ValueError(f"a shell would not pass on {dropped[0]!r}: started directly instead")
    return ["+" + env[v] if v in env else "-" for v in _SHELL_VARIABLES]


def _own(name: str) -> bool:
    return name.startswith(_OWN_PREFIX)


@functools.cache
def keep_environment() -> bool:
    """Whether this system's `sh`, as either gate, hands the program exactly the environment it was given and
    the spare's its command line word for word. dash does; bash as `sh` changes SHLVL as it execs, and then no
    process is held (one probe per worker)."""
    env_program, printf = shutil.which("env"), shutil.which("printf")
    if env_program is None or printf is None:
        return False
    every = {"TABLAO_PROBE": "1", **{v: f"/probe-{v.lower()}" for v in _SHELL_VARIABLES}}
    words = ["%s|", " lead", "trail\t", "two\nlines\n", "", "back\\slash", "$HOME", "*", "-e"]
    for env in ({"TABLAO_PROBE": "1"}, every):
        expected = sorted(f"{k}={v}" for k, v in env.items())
        for command, message in (
            ([*prefetched(env), env_program], b"go\n"),
            (spare(env), spare_message([env_program])),
        ):
            seen = _probe(command, message, env)
            if seen is None or sorted(seen) != expected:
                return False
    return _probe(spare({}), spare_message([printf, *words]), {}, lines=False) == ["|".join(words[1:]) + "|"]


def _probe(command: list[str], message: bytes | None, env: Mapping[str, str], lines: bool = True) -> list[str] | None:
    try:
        seen = subprocess.run(command, input=message, env=env, cwd="/", capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    text = seen.stdout.decode(errors="replace")
    return text.splitlines() if lines else [text]


@functools.cache
def _shell() -> str:
    return shutil.which("sh") or "/bin/sh"

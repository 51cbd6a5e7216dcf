"""Linux Landlock through ctypes: confine a task's processes to the files they may touch.

The worker builds a ruleset in its own process (nothing is restricted there); `restrict_self` then confines
the calling thread for good, and everything it starts: a thread made for one task process
(runners/thread_spawn.py), or the child between fork and exec where that way is not available. Landlock can
only grant, never carve a hole out of a grant, so "everything except the secrets" is built by walking from
`/` down to each protected path and granting every sibling on the way. A Landlocked process also cannot
ptrace, read `/proc/PID/environ|mem|fd` of, or (kernel ABI 6+) signal, a process outside its domain, such as
the worker, Manager and Server.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446  # the same on x86_64 and arm64
_PR_SET_NO_NEW_PRIVS = 38
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
# the rights a rule on a file (not a directory) may carry
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


@functools.cache
def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when there is no Landlock (other OS, old or disabled kernel).

    Asked once: the kernel's answer cannot change while it runs, and every task start asks."""
    if _LIBC is None:
        return 0
    version = _LIBC.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    pass


@dataclass(frozen=True, slots=True)
class Grant:
    path: Path
    access: int


def _covers(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def cover(root: Path, excluded: Iterable[Path], access: int, scanned: dict[Path, int] | None = None) -> list[Grant]:
    """Grants giving `access` to everything under `root` except the `excluded` paths (resolved, absolute).

    The folders whose entries were listed go into `scanned` with their modification time: an entry added to
    or removed from one of them later changes that time, and only then do the grants need building again.
    """
    inside = [e for e in excluded if _covers(root, e)]
    if not inside:
        return [Grant(root, access)]
    if root in inside:
        return []
    grants: list[Grant] = []
    try:
        if scanned is not None:
            scanned[root] = root.stat().st_mtime_ns
        entries = list(os.scandir(root))
    except OSError:
        return grants
    for entry in entries:
        path = root / entry.name
        try:
            if entry.is_symlink():
                continue  # access goes by the target's own rule, never through the link
            if entry.is_dir(follow_symlinks=False):
                grants += cover(path, inside, access, scanned)
            elif path not in inside:
                grants.append(Grant(path, access & _FILE_RIGHTS))
        except OSError:
            continue
    return grants


class Ruleset:
    """An open Landlock ruleset; `restrict_self` confines the thread (or child) that calls it."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        assert _LIBC is not None
        self.abi = abi_version()
        if self.abi < 1:
            raise LandlockError("this kernel has no Landlock")
        handled = _handled_fs(self.abi)
        scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if self.abi >= 6 else 0
        attr = _RulesetAttr(handled, 0, scoped)
        size = ctypes.sizeof(attr) if self.abi >= 6 else (16 if self.abi >= 4 else 8)
        fd = _LIBC.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_create_ruleset: {os.strerror(err)}")
        self.fd = int(fd)
        try:
            for grant in grants:
                self._add(grant, handled)
        except BaseException:
            self.close()
            raise

    def _add(self, grant: Grant, handled: int) -> None:
        assert _LIBC is not None
        try:
            fd = os.open(grant.path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # gone since the walk: nothing to grant
        try:
            is_dir = Path(f"/proc/self/fd/{fd}").is_dir()
            access = grant.access & handled & (~0 if is_dir else _FILE_RIGHTS)
            if not access:
                return
            rule = _PathBeneath(access, fd)
            ok = _LIBC.syscall(
                _SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                ctypes.c_uint32(0),
            )  # fmt: skip
            if ok < 0:
                err = ctypes.get_errno()
                raise LandlockError(err, f"landlock_add_rule {grant.path}: {os.strerror(err)}")
        finally:
            os.close(fd)

    def restrict_self(self) -> None:
        """No new privileges, then the ruleset, for good: on the calling thread only (Linux keeps both per
        thread), and inherited by whatever it starts."""
        assert _LIBC is not None
        if _LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if _LIBC.syscall(_SYS_RESTRICT, ctypes.c_int(self.fd), ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), "landlock_restrict_self failed")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        # shared by a cache and the processes starting with it: closed when the last one lets go
        if getattr(self, "fd", -1) >= 0:
            self.close()

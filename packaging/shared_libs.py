"""One copy of a library in the Linux bundle where two wheels' copies of it are the same library.

Wheels vendor their own copies of common libraries under hashed names (`psycopg_binary.libs/libcrypto-3a0647ea.so.3`)
while the bundle already holds the build machine's copy of the same library for Python or Qt (`libcrypto.so.3`).
For the pairs in SHARED, the wheel's file becomes a symbolic link to the bundle's copy, when that copy defines every
symbol (with its version) that the bundle's users of the wheel's file take from it; a pair that fails the check
stays as it is, and the build says so. The dynamic loader follows the link and loads that file once for both.

OpenSSL: psycopg's libpq then runs on the OpenSSL 3.0 that Python's ssl module uses (it needs only OpenSSL 3.0's
functions), with the system's certificate paths; Pillow's image libraries share Qt's and libtiff's copies (not
libjpeg: Pillow's libtiff uses the 12-bit functions of libjpeg-turbo 3, which the system's libjpeg 6.2 lacks).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# Groups of (the wheel's file name pattern, relative to _internal/; the bundle's copy, in _internal/): a group is
# shared whole or not at all (libssl from one OpenSSL with libcrypto from another would mix their objects).
SHARED = [
    [
        (r"psycopg_binary\.libs/libcrypto-[0-9a-f]{8}\.so\.3", "libcrypto.so.3"),
        (r"psycopg_binary\.libs/libssl-[0-9a-f]{8}\.so\.3", "libssl.so.3"),
    ],
    [  # Kerberos for libpq's GSSAPI logins: the bundle has the system's for its own users
        (r"psycopg_binary\.libs/libgssapi_krb5-[0-9a-f]{8}\.so\.2[.0-9]*", "libgssapi_krb5.so.2"),
        (r"psycopg_binary\.libs/libkrb5-[0-9a-f]{8}\.so\.3[.0-9]*", "libkrb5.so.3"),
        (r"psycopg_binary\.libs/libk5crypto-[0-9a-f]{8}\.so\.3[.0-9]*", "libk5crypto.so.3"),
        (r"psycopg_binary\.libs/libkrb5support-[0-9a-f]{8}\.so\.0[.0-9]*", "libkrb5support.so.0"),
        (r"psycopg_binary\.libs/libcom_err-[0-9a-f]{8}\.so\.2[.0-9]*", "libcom_err.so.2"),
        (r"psycopg_binary\.libs/libkeyutils-[0-9a-f]{8}\.so\.1[.0-9]*", "libkeyutils.so.1"),
    ],
    [(r"pillow\.libs/libXau-[0-9a-f]{8}\.so\.6[.0-9]*", "libXau.so.6")],
    [(r"pillow\.libs/libzstd-[0-9a-f]{8}\.so\.1[.0-9]*", "libzstd.so.1")],
    [(r"pillow\.libs/liblzma-[0-9a-f]{8}\.so\.5[.0-9]*", "liblzma.so.5")],
]


def _symbols(library: Path) -> tuple[set[str], set[str]]:
    """(defined, undefined) dynamic symbols, each as NAME or NAME@VERSION."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(library)], capture_output=True, text=True, check=True)
    defined, undefined = set(), set()
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].rstrip(":").isdigit() or fields[7] == "":
            continue
        name = fields[7].replace("@@", "@")
        if fields[6] == "UND":
            undefined.add(name)
        elif fields[4] != "LOCAL":
            defined.add(name)
            defined.add(name.split("@")[0])  # an unversioned reference takes any version
    return defined, undefined


def _needed(library: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", out)


def missing(users: list[Path], wheel_copy: Path, bundle_copy: Path) -> set[str]:
    """The symbols the users take from the wheel's copy that the bundle's copy does not define."""
    wheel_defines, _ = _symbols(wheel_copy)
    bundle_defines, _ = _symbols(bundle_copy)
    wanted = set()
    for user in users:
        wanted |= {name for name in _symbols(user)[1] if name in wheel_defines}
    return {name for name in wanted if name not in bundle_defines}


def share(internal: Path) -> int:
    """Link the wheels' copies in SHARED to the bundle's copies where that is safe; returns the bytes saved."""
    files = [p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    saved = 0
    for group in SHARED:
        pairs = []
        for pattern, name in group:
            found = [p for p in files if re.fullmatch(pattern, p.relative_to(internal).as_posix())]
            if len(found) == 1 and (internal / name).exists():
                pairs.append((found[0], internal / name))
        if len(pairs) != len(group):
            print(f"shared_libs: {group} not all found once; kept", file=sys.stderr)
            continue
        replaced = {wheel_copy for wheel_copy, _ in pairs}
        gaps = set()
        for wheel_copy, bundle_copy in pairs:
            users = [p for p in files if p not in replaced and wheel_copy.name in _needed(p)]
            gaps |= missing(users, wheel_copy, bundle_copy)
        if gaps:
            print(f"shared_libs: the bundle's copies lack {sorted(gaps)[:5]}; {sorted(replaced)} kept", file=sys.stderr)
            continue
        for wheel_copy, bundle_copy in pairs:
            saved += wheel_copy.stat().st_size
            wheel_copy.unlink()
            wheel_copy.symlink_to(Path("..") / bundle_copy.name)
    return saved

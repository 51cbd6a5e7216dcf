"""Swaps numpy's OpenBLAS (25 MB) in the Linux bundle for the reference BLAS and LAPACK (under 2 MB).

numpy's wheels bring OpenBLAS built for every x86 CPU generation (`numpy.libs/libscipy_openblas64_-*.so`). Tablao
uses numpy only through pyqtgraph's graphs, which need no fast linear algebra; but numpy loads the library on
import, so it must be there. The replacement keeps every numpy function working: a library under OpenBLAS's file
name and soname whose functions jump to the same routines of the reference BLAS and LAPACK with 64-bit integers
(Debian's libblas64 and liblapack64). OpenBLAS names them `scipy_dgesv_64_` and `scipy_cblas_dgemm64_`; the
reference libraries `dgesv_` and `cblas_dgemm`, with the same (ILP64) arguments. LAPACK is linked in from its
position-independent archive (liblapack64_pic.a, package liblapack64-dev), so only the routines numpy calls and
what they call come along (1.2 MB of its 7.4); BLAS is copied in as a library (its archive is not
position-independent). LAPACK's Fortran runtime is numpy's own copy of libgfortran.

tests/unit/packaging/test_numpy_blas.py checks numpy's results with the replacement against OpenBLAS's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BLAS = "libblas64.so.3"  # Debian's libblas64-3
LAPACK_ARCHIVES = [Path("/usr/lib/x86_64-linux-gnu/liblapack64_pic.a")]  # Debian's liblapack64-dev
_NAME = re.compile(r"scipy_(cblas_(\w+?)64_|(\w+?)_64_)$")


def _readelf(*args: str) -> str:
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


def undefined(library: Path) -> set[str]:
    """The dynamic symbols a library takes from others."""
    names = set()
    for line in _readelf("--dyn-syms", "-W", str(library)).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[6] == "UND":
            names.add(fields[7].split("@")[0])
    return names


def soname(library: Path) -> str:
    found = re.search(r"\(SONAME\)\s+Library soname: \[(.+)\]", _readelf("-d", str(library)))
    if not found:
        raise ValueError(f"{library} has no soname")
    return found.group(1)


def needed(library: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", _readelf("-d", str(library)))


def reference_name(name: str) -> str:
    """The reference library's name for an OpenBLAS symbol numpy calls."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not an OpenBLAS routine: {name}")
    return f"cblas_{match.group(2)}" if match.group(2) else f"{match.group(3)}_"


def system_library(name: str) -> Path:
    """Where the dynamic linker's cache finds a library of the build machine."""
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in cache.splitlines():
        match = re.match(rf"\s*{re.escape(name)} \(libc6,x86-64\) => (\S+)", line)
        if match:
            return Path(match.group(1)).resolve()
    raise SystemExit(f"numpy_blas: {name} is missing (Debian: apt-get install liblapack64-dev)")


def lapack_archive() -> Path:
    for archive in LAPACK_ARCHIVES:
        if archive.exists():
            return archive
    raise SystemExit("numpy_blas: no liblapack64_pic.a (Debian: apt-get install liblapack64-dev)")


def build_shim(folder: Path, name: str, routines: set[str], gfortran: Path) -> Path:
    """`folder/name`: `routines`, each a jump to the reference routine; LAPACK's linked in, BLAS from $ORIGIN."""
    lines = ['\t.section .note.GNU-stack,"",@progbits', "\t.text"]
    for routine in sorted(routines):
        lines += [f"\t.globl {routine}", f"\t.type {routine}, @function", f"{routine}:"]
        lines += [f"\tjmp {reference_name(routine)}@PLT", f"\t.size {routine}, . - {routine}"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "shim.s").write_text("\n".join(lines) + "\n")
        subprocess.run(["as", "-o", "shim.o", "shim.s"], cwd=tmp, check=True)
        built = Path(tmp) / name
        subprocess.run(
            ["ld", "-shared", "-z", "noexecstack", "--gc-sections", "-soname", name, "-rpath", "$ORIGIN",
             "-o", str(built), "shim.o", str(lapack_archive()), str(gfortran), str(folder / BLAS), "-lm", "-lc"],
            cwd=tmp,
            check=True,
        )  # fmt: skip
        missing = [r for r in undefined(built) if r.endswith("_") and not r.startswith("_gfortran")]
        provided = _defined(folder / BLAS)
        if not set(missing) <= provided:
            raise SystemExit(f"numpy_blas: the reference BLAS lacks {sorted(set(missing) - provided)}")
        (folder / name).unlink(missing_ok=True)
        shutil.copyfile(built, folder / name)
    (folder / name).chmod(0o755)
    return folder / name


def _defined(library: Path) -> set[str]:
    names = set()
    for line in _readelf("--dyn-syms", "-W", str(library)).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[6] != "UND" and fields[3] in ("FUNC", "IFUNC"):
            names.add(fields[7].split("@")[0])
    return names


def replace_openblas(internal: Path) -> tuple[int, int]:
    """Replace numpy's OpenBLAS in a bundle's `_internal/`; returns the bytes of numpy.libs before and after."""
    libs = internal / "numpy.libs"
    openblas = [p for p in libs.glob("libscipy_openblas64_*.so") if not p.is_symlink()]
    if len(openblas) != 1:
        raise SystemExit(f"numpy_blas: expected one OpenBLAS in {libs}, found {openblas}")
    before = sum(p.stat().st_size for p in libs.iterdir() if not p.is_symlink())
    name = soname(openblas[0])
    routines = set()
    for extension in (internal / "numpy").rglob("*.so"):
        if name in needed(extension):
            routines |= {symbol for symbol in undefined(extension) if symbol.startswith("scipy_")}
    if not routines:
        raise SystemExit(f"numpy_blas: no numpy extension takes a routine from {name}")
    gfortran = [p for p in libs.glob("libgfortran-*.so.5*") if not p.is_symlink()]
    if len(gfortran) != 1:
        raise SystemExit(f"numpy_blas: expected numpy's libgfortran in {libs}, found {gfortran}")
    shutil.copyfile(system_library(BLAS), libs / BLAS)
    (libs / BLAS).chmod(0o755)
    openblas[0].unlink()
    # linked under OpenBLAS's name; every routine must resolve in what the shim was linked with, or ld's
    # result has them undefined: check the jump targets are all defined in the shim or BLAS
    shim = build_shim(libs, openblas[0].name, routines, gfortran[0])
    unresolved = {reference_name(r) for r in routines} - _defined(shim) - _defined(libs / BLAS)
    if unresolved:
        raise SystemExit(f"numpy_blas: the reference libraries lack {sorted(unresolved)}")
    return before, sum(p.stat().st_size for p in libs.iterdir() if not p.is_symlink())

"""Swaps numpy's OpenBLAS (25 MB) in the Linux bundle for the reference BLAS and LAPACK (about 8 MB).

numpy's wheels bring OpenBLAS built for every x86 CPU generation (`numpy.libs/libscipy_openblas64_-*.so`). Tablao
uses numpy only through pyqtgraph's graphs, which need no fast linear algebra; but numpy loads the library on
import, so it must be there. The replacement keeps every numpy function working: a small library under OpenBLAS's
file name and soname whose functions jump to the same routines of Debian's reference BLAS and LAPACK with 64-bit
integers (packages libblas64-3 and liblapack64-3, copied in beside it). OpenBLAS names them `scipy_dgesv_64_` and
`scipy_cblas_dgemm64_`; the reference libraries `dgesv_` and `cblas_dgemm`, with the same (ILP64) arguments.
LAPACK's Fortran runtime is numpy's own copy of libgfortran, under the name LAPACK asks for.

tests/unit/packaging/test_numpy_blas.py checks numpy's results with the replacement against known answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REFERENCE = ("libblas64.so.3", "liblapack64.so.3")  # Debian's libblas64-3 and liblapack64-3
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


def defined(library: Path) -> set[str]:
    names = set()
    for line in _readelf("--dyn-syms", "-W", str(library)).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[6] != "UND" and fields[3] in ("FUNC", "IFUNC"):
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
    raise SystemExit(f"numpy_blas: {name} is missing (Debian: apt-get install libblas64-3 liblapack64-3)")


def build_shim(folder: Path, name: str, routines: set[str]) -> Path:
    """`folder/name`: a library of `routines`, each a jump to the reference routine, which it loads from $ORIGIN."""
    lines = ['\t.section .note.GNU-stack,"",@progbits', "\t.text"]
    for routine in sorted(routines):
        lines += [f"\t.globl {routine}", f"\t.type {routine}, @function", f"{routine}:"]
        lines += [f"\tjmp {reference_name(routine)}@PLT", f"\t.size {routine}, . - {routine}"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "shim.s").write_text("\n".join(lines) + "\n")
        (Path(tmp) / "empty.s").write_text('\t.section .note.GNU-stack,"",@progbits\n')
        subprocess.run(["as", "-o", "shim.o", "shim.s"], cwd=tmp, check=True)
        subprocess.run(["as", "-o", "empty.o", "empty.s"], cwd=tmp, check=True)
        # The shim needs libgfortran.so.5 by that name, and first: it is found beside the shim ($ORIGIN), and LAPACK,
        # which has no search path of its own, then finds it loaded under the name it asks for. Linking against
        # numpy's copy would record its auditwheel name instead, so the link uses an empty library of that soname.
        stub = Path(tmp) / "stub"
        stub.mkdir()
        subprocess.run(
            ["ld", "-shared", "-soname", "libgfortran.so.5", "-o", str(stub / "libgfortran.so.5"), "empty.o"],
            cwd=tmp,
            check=True,
        )
        libraries = [f"-l:{library}" for library in ("libgfortran.so.5", *REFERENCE)]
        subprocess.run(
            ["ld", "-shared", "-z", "noexecstack", "--no-as-needed", "-soname", name, "-rpath", "$ORIGIN",
             "-L", str(stub), "-L", str(folder), "-o", str(Path(tmp) / name), "shim.o", *libraries],
            cwd=tmp,
            check=True,
        )  # fmt: skip
        (folder / name).unlink(missing_ok=True)
        shutil.copyfile(Path(tmp) / name, folder / name)
    (folder / name).chmod(0o755)
    return folder / name


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
    gfortran = [p for p in libs.glob("libgfortran-*.so.5*") if not p.is_symlink()]
    if len(gfortran) != 1:
        raise SystemExit(f"numpy_blas: expected numpy's libgfortran in {libs}, found {gfortran}")
    # LAPACK asks for libgfortran.so.5: numpy's copy (the same runtime, renamed by auditwheel) answers to it
    (libs / "libgfortran.so.5").unlink(missing_ok=True)
    (libs / "libgfortran.so.5").symlink_to(gfortran[0].name)
    provided = set()
    for library in REFERENCE:
        shutil.copyfile(system_library(library), libs / library)
        (libs / library).chmod(0o755)
        provided |= defined(libs / library)
    missing = sorted(r for r in routines if reference_name(r) not in provided)
    if not routines or missing:
        raise SystemExit(f"numpy_blas: the reference libraries lack {missing} (numpy needs {len(routines)})")
    openblas[0].unlink()
    build_shim(libs, openblas[0].name, routines)
    return before, sum(p.stat().st_size for p in libs.iterdir() if not p.is_symlink())

"""numpy with the reference BLAS and LAPACK in place of OpenBLAS (packaging/numpy_blas.py) gives the same answers.

A copy of the venv's numpy gets the replacement; a child Python imports that copy and runs every routine numpy takes
from the library (products of each float and complex type, which go through BLAS, and the linear-algebra functions,
which go through LAPACK, linked into the replacement); the answers are compared with those of the venv's numpy,
which uses OpenBLAS.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.packaging import load_packaging


@pytest.fixture(scope="module")
def numpy_blas() -> ModuleType:
    return load_packaging("numpy_blas")


def test_reference_names(numpy_blas: ModuleType) -> None:
    assert numpy_blas.reference_name("scipy_dgesdd_64_") == "dgesdd_"
    assert numpy_blas.reference_name("scipy_cblas_zdotu_sub64_") == "cblas_zdotu_sub"
    assert numpy_blas.reference_name("scipy_cblas_sgemm64_") == "cblas_sgemm"
    with pytest.raises(ValueError):
        numpy_blas.reference_name("PyArray_Type")


PROBE = """
import json
import numpy as np
rng = np.random.default_rng(7)
out = {}
def put(key, value):
    value = np.asarray(value)
    if np.iscomplexobj(value):
        out[key] = [value.real.ravel().tolist(), value.imag.ravel().tolist()]
    else:
        out[key] = value.astype(float).ravel().tolist()
for t in (np.float32, np.float64, np.complex64, np.complex128):
    a = rng.standard_normal((40, 30)).astype(t)
    b = rng.standard_normal((30, 20)).astype(t)
    v = rng.standard_normal(30).astype(t)
    if np.iscomplexobj(a):
        a = a + 1j * rng.standard_normal(a.shape).astype(a.real.dtype)
        v = v + 1j * rng.standard_normal(v.shape).astype(v.real.dtype)
    name = np.dtype(t).name
    put(f"gemm {name}", a @ b)
    put(f"gemm transposed {name}", b.T @ a.T)
    put(f"gemv {name}", a @ v)
    put(f"dot {name}", np.dot(v, v))
    put(f"vdot {name}", np.vdot(v, v))
    put(f"syrk {name}", a @ a.T)
    put(f"axpy-like {name}", np.dot(a[:, :1].T, a))
for t in (np.float32, np.float64, np.complex64, np.complex128):
    m = rng.standard_normal((12, 12)).astype(t) + 12 * np.eye(12, dtype=t)
    if np.iscomplexobj(m):
        m = m + 1j * rng.standard_normal(m.shape).astype(m.real.dtype)
    h = m @ np.conj(m).T
    r = rng.standard_normal(12).astype(t)
    name = np.dtype(t).name
    put(f"solve {name}", np.linalg.solve(m, r))
    put(f"inv {name}", np.linalg.inv(m))
    put(f"det {name}", np.linalg.det(m))
    put(f"eigvals {name}", np.sort_complex(np.linalg.eigvals(m)))
    put(f"eigvalsh {name}", np.linalg.eigvalsh(h))
    put(f"svd {name}", np.linalg.svd(m, compute_uv=False))
    put(f"lstsq {name}", np.linalg.lstsq(m[:, :8], r, rcond=None)[0])
    put(f"cholesky {name}", np.linalg.cholesky(h))
    put(f"qr {name}", np.abs(np.linalg.qr(m)[1]))
out["libraries"] = sorted({line.split()[-1] for line in open("/proc/self/maps") if ".so" in line
                           and any(k in line for k in ("blas", "lapack", "gfortran"))})
print(json.dumps(out))
"""


def _run(path: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH")}
    if path:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env, cwd=path, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_numpy_gives_the_same_answers_with_the_reference_libraries(numpy_blas: ModuleType, tmp_path: Path) -> None:
    import numpy

    site = Path(numpy.__file__).parent.parent
    if sys.platform != "linux" or platform.machine() != "x86_64" or not (site / "numpy.libs").is_dir():
        pytest.skip("the replacement is for numpy's x86-64 Linux wheel, which brings OpenBLAS in numpy.libs/")
    for tool in ("as", "ld", "readelf", "ldconfig"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (scripts/system-deps.sh installs binutils)")
    shutil.copytree(site / "numpy", tmp_path / "numpy", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    shutil.copytree(site / "numpy.libs", tmp_path / "numpy.libs", symlinks=True)
    before, after = numpy_blas.replace_openblas(tmp_path)
    assert before > 25_000_000 and after < 6_000_000, (before, after)
    assert all(p.stat().st_size < 2_000_000 for p in (tmp_path / "numpy.libs").glob("*openblas*"))

    openblas, reference = _run(None), _run(tmp_path)
    libraries = reference.pop("libraries")
    openblas.pop("libraries")
    # every library came from the copy: none from the system (libgfortran included, which LAPACK asks for by name)
    assert libraries and all(lib.startswith(str(tmp_path)) for lib in libraries), libraries
    assert any("openblas" in lib for lib in libraries) and any("libblas64" in lib for lib in libraries), libraries
    import numpy as np

    assert reference.keys() == openblas.keys()
    for key, value in openblas.items():
        tolerance = 1e-3 if ("float32" in key or "complex64" in key) else 1e-9  # single or double precision
        assert np.allclose(reference[key], value, rtol=tolerance, atol=tolerance), key

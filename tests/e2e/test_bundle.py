"""The PyInstaller bundle, built (or taken from the cache) by packaging/build_bundle.py: its three programs work.

The bundled all-in-one farm renders an `exec` job to completion with no display; the desktop program starts its
embedded farm offscreen and stops cleanly; the tray program routes to `tablao tray`; nothing the bundle left out
is still needed by what it kept. The first run builds the bundle (about a minute and a half); later runs reuse
it until a source, the lock or the spec changes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.farm import free_port_pair
from tests.support.packaging import load_packaging

pytestmark = [pytest.mark.frozen]
BUILD_TIMEOUT = 900  # a cold build under load; a cached one takes a fraction of a second


@pytest.fixture(scope="module")
def bundle() -> Path:
    pytest.importorskip("PyInstaller", reason="PyInstaller is in the `package` dependency group")
    return Path(load_packaging("build_bundle").build())


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TABLAO_", "PYTHON"))}
    env.update(extra)
    return env


def _wait_token(farm: subprocess.Popen[bytes], token_file: Path, log: Path, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert farm.poll() is None, log.read_text()
        if token_file.exists() and token_file.read_text().strip():
            return token_file.read_text().strip()
        time.sleep(0.5)
    raise AssertionError(f"no admin token after {timeout} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 45) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_bundle_has_three_programs_and_its_version(bundle: Path) -> None:
    for name in ("tablao", "tablao-desktop", "tablao-tray"):
        assert os.access(bundle / name, os.X_OK), name
    out = subprocess.run([bundle / "tablao", "--version"], capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 0 and out.stdout.startswith("tablao "), out.stderr
    from importlib.metadata import version

    assert out.stdout.split()[1] == version("tablao")
    assert (bundle / "_internal" / "resources" / "icons" / "tablao.png").exists()


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_bundled_all_in_one_runs_an_exec_job_to_completion(bundle: Path, tmp_path: Path) -> None:
    port = free_port_pair()
    log_path = tmp_path / "farm.log"
    argv = [str(bundle / "tablao"), "all-in-one", "--headless", "--data-dir", str(tmp_path / "farm")]
    # the job writes its markers under an output root of the farm (tasks may write nowhere else)
    out = tmp_path / "out"
    out.mkdir()
    argv += ["--output-root", str(out)]
    with log_path.open("w") as log:
        farm = subprocess.Popen(
            [*argv, "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, env=_env()
        )
    try:
        token_file = tmp_path / "farm" / "server" / "admin.token"
        token = _wait_token(farm, token_file, log_path)
        job_file = tmp_path / "job.json"
        marker = out / "ran"
        job_file.write_text(
            json.dumps({
                "name": "bundle exec", "type": "exec",
                "settings": {"command": ["mkdir", "-p", f"{marker}/{{frame}}"], "frames": "1-3", "chunk_size": 1},
            })
        )  # fmt: skip
        client = ["--server", f"http://127.0.0.1:{port}", "--token-file", str(token_file)]
        submitted = subprocess.run(
            [bundle / "tablao", "submit", str(job_file), *client],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
        )
        assert submitted.returncode == 0, submitted.stderr
        job_id = int(submitted.stdout.split()[2])
        status, deadline = "", time.monotonic() + 180
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            while time.monotonic() < deadline and status not in ("completed", "failed", "canceled"):
                assert farm.poll() is None, log_path.read_text()
                time.sleep(1)
                status = c.get(f"/jobs/{job_id}").json()["status"]
            types = {t["name"] for t in c.get("/job-types").json()}
        assert status == "completed", log_path.read_text()
        assert sorted(p.name for p in marker.iterdir()) == ["1", "2", "3"]
        assert {"blender-render", "blender-still", "ffmpeg-encode", "exec"} <= types
        if sys.platform == "linux":  # headless, nothing the bundle leaves to a desktop is loaded (docs/operations.md)
            processes = [psutil.Process(farm.pid), *psutil.Process(farm.pid).children(recursive=True)]
            assert len(processes) >= 4, processes  # the farm, its Server, its Manager and its worker
            maps = "".join(Path(f"/proc/{p.pid}/maps").read_text() for p in processes)
            assert not [name for name in ("libdbus-1", "libGL", "libEGL", "libQt6") if name in maps]
        assert _stop(farm) == 0, log_path.read_text()
    finally:
        if farm.poll() is None:
            farm.kill()
            farm.wait()


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_bundled_desktop_app_starts_offscreen_and_stops_cleanly(bundle: Path, tmp_path: Path) -> None:
    port = free_port_pair()
    log_path = tmp_path / "desktop.log"
    data = tmp_path / "farm"
    env = _env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    argv = [str(bundle / "tablao-desktop"), "--embedded", "--data-dir", str(data), "--port", str(port)]
    with log_path.open("w") as log:
        app = subprocess.Popen([*argv, "--workers", "0"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        token = _wait_token(app, data / "server" / "admin.token", log_path)
        deadline, healthy = time.monotonic() + 60, False
        while time.monotonic() < deadline and not healthy:
            assert app.poll() is None, log_path.read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
                healthy = r.status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
        assert healthy, log_path.read_text()
        time.sleep(2)  # the window is up and syncing
        assert app.poll() is None, log_path.read_text()
        assert _stop(app, signal.SIGTERM) == 0, log_path.read_text()
        with pytest.raises(httpx.HTTPError):  # the embedded Server stopped with the app
            httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", timeout=2)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


# Run inside one private D-Bus session with gnome-keyring: the bundled worker registers with its credentials in the
# Secret Service (so through the bundle's own AES, rth_secret_service_cipher.py), stops, and signs on with them
# again; then keyring with the real `cryptography` reads what it stored.
KEYRING_DRIVER = """
import json, signal, subprocess, sys, time
import httpx, keyring.backends.SecretService as secret_service
program, manager, data, secret, server, token = sys.argv[1:]
subprocess.run("echo -n unlock | gnome-keyring-daemon --unlock --components=secrets", shell=True, check=True,
               stdout=subprocess.DEVNULL)
seen = []
for run in (1, 2):
    worker = subprocess.Popen([program, "worker", "--manager", manager, "--data-dir", data, "--name", "keyring-kept",
                               "--credentials", "keyring", "--registration-secret-file", secret, "--no-confine"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        ours = [w for w in httpx.get(server + "/api/v1/workers", headers={"Authorization": "Bearer " + token}).json()
                if w["name"] == "keyring-kept"]
        if ours and ours[0]["status"] == "awake":
            seen.append([w["id"] for w in ours])
            break
        time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)
    assert code in (0, -signal.SIGTERM), code  # it stops cleanly, then ends by the signal it was sent
stored = json.loads(secret_service.Keyring().get_password("tablao-worker", data))
print(json.dumps({"seen": seen, "stored": stored}))
"""


@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring (make system-deps installs them)",
)
def test_bundled_worker_keeps_its_credentials_in_a_real_secret_service(bundle: Path, tmp_path: Path) -> None:
    port = free_port_pair()
    log_path = tmp_path / "farm.log"
    argv = [str(bundle / "tablao"), "all-in-one", "--headless", "--data-dir", str(tmp_path / "farm")]
    with log_path.open("w") as log:
        farm = subprocess.Popen(
            [*argv, "--port", str(port), "--workers", "0"], stdout=log, stderr=subprocess.STDOUT, env=_env()
        )
    try:
        token = _wait_token(farm, tmp_path / "farm" / "server" / "admin.token", log_path)
        data = tmp_path / "worker"
        secret = tmp_path / "farm" / "manager" / "worker-registration.secret"
        deadline = time.monotonic() + 60  # the Manager writes it when it starts, after the Server
        while not (secret.exists() and secret.read_text().strip()) and time.monotonic() < deadline:
            assert farm.poll() is None, log_path.read_text()
            time.sleep(0.3)
        env = {k: v for k, v in _env().items() if not k.startswith(("DBUS_", "XDG_"))}
        env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
        done = subprocess.run(
            ["dbus-run-session", "--", sys.executable, "-c", KEYRING_DRIVER, str(bundle / "tablao"),
             f"http://127.0.0.1:{port + 1}", str(data), str(secret), f"http://127.0.0.1:{port}", token],
            capture_output=True, text=True, timeout=240, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        result = json.loads(done.stdout.splitlines()[-1])
        first, second = result["seen"]
        assert len(first) == 1 and first == second, "the second start registered again instead of signing on"
        assert result["stored"]["worker_id"] == first[0] and result["stored"]["secret"]
        assert not (data / "worker.json").exists(), "the credentials went to a file, not the keyring"
        assert _stop(farm) == 0, log_path.read_text()
    finally:
        if farm.poll() is None:
            farm.kill()
            farm.wait()


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_bundled_tray_program_starts_the_tray_agent(bundle: Path, tmp_path: Path) -> None:
    usage = subprocess.run([bundle / "tablao", "--help"], capture_output=True, text=True, timeout=60, env=_env())
    if "tray" not in usage.stdout:
        pytest.skip("this build has no `tablao tray` subcommand yet (the tray agent's branch)")
    env = _env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    helped = subprocess.run([bundle / "tablao-tray", "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "tray" in helped.stdout
    log_path = tmp_path / "tray.log"
    with log_path.open("w") as log:
        tray = subprocess.Popen([bundle / "tablao-tray"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        time.sleep(5)
        if tray.poll() is None:
            assert _stop(tray, signal.SIGTERM) in (0, -signal.SIGTERM), log_path.read_text()
        else:  # offscreen there is no system tray: the tray says so in one line (it waited at a box no one saw)
            said = log_path.read_text()
            assert tray.returncode == 0 or (tray.returncode == 1 and "no system tray" in said), said
            assert "Traceback" not in said, said
    finally:
        if tray.poll() is None:
            tray.kill()
            tray.wait()


@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.skipif(sys.platform != "linux", reason="ELF libraries")
def test_no_kept_library_needs_a_dropped_one(bundle: Path) -> None:
    bundle_filter = load_packaging("bundle_filter")
    needs: dict[str, str] = {}
    for path in (bundle / "_internal").rglob("*.so*"):
        if path.is_symlink() or not path.is_file():
            continue
        dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, timeout=30).stdout
        for line in dynamic.splitlines():
            if "(NEEDED)" in line:
                needs[line.rsplit("[", 1)[1].rstrip("]")] = str(path.relative_to(bundle))
    assert needs, "readelf found no dependencies at all"
    assert {name: by for name, by in needs.items() if bundle_filter.dropped(name)} == {
        name: by for name, by in needs.items() if bundle_filter.from_the_system(name)
    }
    # what the bundle expects from the system is on this one (scripts/system-deps.sh), so its tests load it
    known = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30).stdout
    assert all(f"{name} " in known for name in needs if bundle_filter.from_the_system(name))


LOAD_ALL = """
import ctypes, os, sys
from pathlib import Path
internal = Path(sys.argv[1])
for folder in ("PIL", "psycopg_binary", "numpy"):
    for extension in sorted((internal / folder).rglob("*.so")):
        ctypes.CDLL(str(extension), mode=os.RTLD_NOW | os.RTLD_LOCAL)
print("\\n".join(sorted({line.split()[-1] for line in open("/proc/self/maps") if ".so" in line})))
"""


@pytest.mark.timeout(BUILD_TIMEOUT)
@pytest.mark.skipif(sys.platform != "linux", reason="ELF libraries")
def test_wheels_libraries_load_from_the_bundle_with_what_they_share(bundle: Path) -> None:
    """Pillow's, psycopg's and numpy's extensions resolve every symbol (RTLD_NOW) with the libraries the build
    swapped or shared (packaging/numpy_blas.py, shared_libs.py), and none of those comes from the system."""
    internal = bundle / "_internal"
    env = _env(LD_LIBRARY_PATH=str(internal))  # as the bundle's programs run: PyInstaller's bootloader sets it
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALL, str(internal)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    for name in (
        "libcrypto",
        "libssl",
        "libXau",
        "libzstd",
        "liblzma",
        "libgfortran",
        "libscipy_openblas64_",
        "libblas64",
        "libpq",
        "libgssapi_krb5",
        "libkrb5",
    ):
        copies = [path for path in loaded if f"/{name}" in path]
        assert copies and all(path.startswith(str(internal)) for path in copies), (name, copies)
    assert len([path for path in loaded if "/libcrypto" in path]) == 1, "two OpenSSLs loaded"
    assert not [path for path in loaded if "liblapack" in path], "LAPACK is linked into numpy's BLAS library"


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_ci_smoke_test_passes_on_the_bundle(bundle: Path, tmp_path: Path) -> None:
    """packaging/smoke_test.py is what the CI workflow runs after installing on each platform."""
    load_packaging("smoke_test").run(bundle / "tablao", tmp_path)

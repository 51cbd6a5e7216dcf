"""The bundle's AES-CBC for keyring's Secret Service (packaging/rth_secret_service_cipher.py) is `cryptography`'s.

The hook stands in for the `cryptography` package, so it runs in child processes here: one computes with the
stand-in, this process checks the bytes against `cryptography` itself. Then a real Secret Service (gnome-keyring in
a private D-Bus session) stores and returns a secret through keyring with the stand-in, and `cryptography` reads
what the stand-in stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.support.services import ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the stand-in is for the Linux bundle")
HOOK = str(ROOT / "packaging" / "rth_secret_service_cipher.py")

# (key, iv, plaintext, how the plaintext is fed to update()) with keys of the three AES sizes
CASES = [
    (bytes(range(k)), bytes(range(100, 116)), bytes((i * 7 + k) % 256 for i in range(n)), split)
    for k in (16, 24, 32)
    for n, split in ((0, []), (16, []), (48, [5, 21]), (1024, [1, 15, 16, 500]), (4096, [4095]))
]

COMPUTE = """
import json, runpy, sys
runpy.run_path(sys.argv[1])
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def run(context, data, split):
    parts, last = [], 0
    for cut in split + [len(data)]:
        parts.append(context.update(data[last:cut]))
        last = cut
    return b"".join(parts) + context.finalize()

out = []
for key, iv, data, split in json.loads(sys.stdin.read()):
    key, iv, data = bytes.fromhex(key), bytes.fromhex(iv), bytes.fromhex(data)
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv), default_backend())
    sealed = run(cipher.encryptor(), data, split)
    opened = run(cipher.decryptor(), sealed, split)
    out.append([sealed.hex(), opened.hex()])
errors = []
cipher = Cipher(algorithms.AES(bytes(16)), modes.CBC(bytes(16)))
for attempt in (
    lambda: (lambda c: (c.update(b"abc"), c.finalize()))(cipher.encryptor()),
    lambda: (lambda c: (c.update(b"x" * 17), c.finalize()))(cipher.encryptor()),
    lambda: (lambda c: (c.finalize(), c.update(bytes(16))))(cipher.encryptor()),
    lambda: algorithms.AES(bytes(15)),
    lambda: Cipher(algorithms.AES(bytes(16)), modes.CBC(bytes(8))),
    lambda: __import__("cryptography").fernet,
):
    try:
        attempt()
        errors.append("no error")
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
rust = [line for line in open("/proc/self/maps") if "cryptography" in line]
print(json.dumps({"out": out, "errors": errors, "rust": rust, "module": type(sys.modules["cryptography"]).__name__}))
"""


def _reference(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def test_the_stand_in_encrypts_and_decrypts_as_cryptography_does() -> None:
    cases = [[key.hex(), iv.hex(), data.hex(), split] for key, iv, data, split in CASES]
    done = subprocess.run(
        [sys.executable, "-c", COMPUTE, HOOK],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["module"] == "_LeftOut" and result["rust"] == [], "the real cryptography was loaded"
    for (key, iv, data, _split), (sealed, opened) in zip(CASES, result["out"], strict=True):
        assert bytes.fromhex(sealed) == _reference(key, iv, data), (len(key), len(data))
        assert bytes.fromhex(opened) == data
    # NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt), first two blocks: the reference itself is the standard's
    nist_key, nist_iv = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"), bytes(range(16))
    nist_plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    assert _reference(nist_key, nist_iv, nist_plain).hex() == (
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    )
    not_whole, too_long, after, key_size, iv_size, left_out = result["errors"]
    assert "not a multiple of the block length" in not_whole and "not a multiple" in too_long
    assert after.startswith("AlreadyFinalized")
    assert key_size.startswith("ValueError: Invalid key size (120)") and iv_size.startswith("ValueError: Invalid IV")
    assert "left out of the Tablao bundle" in left_out


STORE = """
import runpy, sys
runpy.run_path(sys.argv[1])
from keyring.backends import SecretService
backend = SecretService.Keyring()
backend.set_password("tablao-test", "worker", "s3cret-\\u00e9-" + "x" * 100)
print(backend.get_password("tablao-test", "worker"))
print(type(sys.modules["cryptography"]).__name__)
"""
READ = """
from keyring.backends import SecretService
import cryptography.hazmat.bindings._rust  # the real package
print(SecretService.Keyring().get_password("tablao-test", "worker"))
"""


@pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring (make system-deps installs them)",
)
def test_keyring_keeps_a_secret_in_a_real_secret_service_with_the_stand_in(tmp_path: Path) -> None:
    script = (
        'echo -n unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null && "$0" -c "$STORE" "$1" && '
        '"$0" -c "$READ"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "PYTHON_KEYRING", "XDG_"))}
    env.update(HOME=str(tmp_path), STORE=STORE, READ=READ, XDG_RUNTIME_DIR=str(tmp_path))
    done = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script, sys.executable, HOOK],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    secret = "s3cret-\u00e9-" + "x" * 100
    assert done.stdout.splitlines() == [secret, "_LeftOut", secret]

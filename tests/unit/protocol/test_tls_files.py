"""A certificate, key or CA bundle that OpenSSL cannot use is one line at a service's start naming the files, not a
traceback after the start was announced (a newcomer's audit: the Server printed its address, then 37 lines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from services.protocol import tls
from tests.support.services import ROOT, child_env


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key", "other_key", "junk")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    other.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(files["other_key"]))
    files["junk"].write_text("not a certificate\n")
    return files


def test_a_certificate_and_its_key_pass(pems: dict[str, Path]) -> None:
    assert tls.listen_problem("127.0.0.1", pems["cert"], pems["key"], insecure_http=False) is None
    assert tls.ca_bundle_problem(pems["ca"]) is None


@pytest.mark.parametrize(("cert", "key"), [("cert", "other_key"), ("junk", "key"), ("cert", "junk"), ("key", "cert")])
def test_a_certificate_and_key_that_do_not_go_together_are_named(pems: dict[str, Path], cert: str, key: str) -> None:
    problem = tls.listen_problem("127.0.0.1", pems[cert], pems[key], insecure_http=False)
    assert problem is not None and f"--tls-cert {pems[cert]} and --tls-key {pems[key]}" in problem, problem


@pytest.mark.parametrize("bundle", ["junk", "key"])
def test_a_ca_bundle_without_a_certificate_is_named(pems: dict[str, Path], bundle: str) -> None:
    problem = tls.ca_bundle_problem(pems[bundle])
    assert problem is not None and problem.startswith(f"CA bundle {pems[bundle]}: no CA certificate"), problem
    with pytest.raises(OSError, match="no CA certificate"):
        tls.client_context(pems[bundle])


@pytest.mark.parametrize(
    "argv",
    [
        ["server", "--port", "0", "--tls-cert", "{cert}", "--tls-key", "{other_key}"],
        ["manager", "--server", "https://127.0.0.1:1", "--ca-bundle", "{junk}", "--port", "0"],
        ["worker", "--manager", "https://127.0.0.1:1", "--ca-bundle", "{junk}"],
    ],
    ids=["server", "manager", "worker"],
)
def test_each_service_stops_at_its_start_in_one_line(pems: dict[str, Path], tmp_path: Path, argv: list[str]) -> None:
    token = tmp_path / "token"
    token.write_text("tbl_manager\n")
    args = [a.format(**pems) for a in argv] + ["--data-dir", str(tmp_path / argv[0])]
    if argv[0] == "manager":
        args += ["--token-file", str(token)]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=child_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert ("CA bundle" in done.stderr) or ("--tls-cert" in done.stderr), done.stderr
    assert not (tmp_path / "server" / "admin.token").exists()  # nothing made before the refusal


def test_a_key_with_a_passphrase_is_named_without_a_prompt(pems: dict[str, Path], tmp_path: Path) -> None:
    """The service would have stopped at OpenSSL's passphrase prompt (none under a service manager)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pems["key"].read_bytes(), password=None)
    locked = tmp_path / "locked-key.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    problem = tls.listen_problem("127.0.0.1", pems["cert"], locked, insecure_http=False)
    assert problem == f"--tls-key {locked} is encrypted with a passphrase: give the key without one"

"""Writes the service templates shipped in packaging/services/ for those who write their own units.

They are what `tablao service install ROLE` writes for a bundle unpacked in /opt/tablao, running as a `tablao`
account, with example flags; tests/unit/system/test_units.py checks they are current. Run it from the repository:
`.venv/bin/python packaging/make_service_templates.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.system.units import ServiceSpec, launchd_plist_bytes, systemd_unit  # noqa: E402

OUT = ROOT / "packaging" / "services"
EXAMPLE_FLAGS = {
    # TLS on every address other machines reach (docs/operations.md, "A farm on several machines"): a service
    # refuses a non-loopback --host without it, and `tablao service install` refuses to write such a unit
    "server": ("--host", "0.0.0.0", "--port", "8470",
               "--tls-cert", "/etc/tablao/server.pem", "--tls-key", "/etc/tablao/server-key.pem"),
    "manager": ("--server", "https://tablao-server:8470", "--ca-bundle", "/etc/tablao/ca.pem",
                "--token-file", "/etc/tablao/manager.token", "--host", "0.0.0.0", "--port", "8471",
                "--tls-cert", "/etc/tablao/manager.pem", "--tls-key", "/etc/tablao/manager-key.pem"),
    "worker": ("--manager", "https://tablao-manager:8471", "--ca-bundle", "/etc/tablao/ca.pem",
               "--registration-secret-file", "/etc/tablao/worker-registration.secret",
               "--output-root", "{render_root}"),
}  # fmt: skip


def templates() -> dict[str, bytes]:
    """File name -> content of every template."""
    files: dict[str, bytes] = {}
    for role, flags in EXAMPLE_FLAGS.items():
        linux_dir = PurePosixPath("/var/lib/tablao") / role
        mac_dir = PurePosixPath("/Library/Application Support/tablao") / role
        linux = ServiceSpec(role, ("/opt/tablao/tablao", role, "--data-dir", str(linux_dir), *flags), linux_dir,
                            user_scope=False, run_as="tablao")  # fmt: skip
        mac = ServiceSpec(role, ("/Applications/Tablao.app/Contents/MacOS/tablao", role, "--data-dir", str(mac_dir),
                                 *flags), mac_dir, user_scope=False, run_as="_tablao")  # fmt: skip
        files[f"{linux.name}.service"] = systemd_unit(linux).encode()
        files[f"{mac.label}.plist"] = launchd_plist_bytes(mac)
    return files


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, content in templates().items():
        (OUT / name).write_bytes(content)
    print(f"make_service_templates: wrote {len(EXAMPLE_FLAGS) * 2} files into {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

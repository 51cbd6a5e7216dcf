"""Where a local farm keeps its files: one data-directory rule and one layout for every tool.

The rule: `TABLAO_DATA_DIR` if set, else the platform's user data directory (platformdirs). The Server, the
Manager, the Worker, `tablao all-in-one`, the desktop app and the command-line client all take their default
paths from here, so `tablao submit` finds the admin token of a farm that the app started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

DATA_DIR_ENV = "TABLAO_DATA_DIR"
DEFAULT_SERVER_PORT = 8470  # the Manager of a local farm listens on the next port


def default_data_dir() -> Path:
    """The one data-directory rule: TABLAO_DATA_DIR, else the platform's user data directory."""
    return Path(os.environ.get(DATA_DIR_ENV) or user_data_dir("tablao", appauthor=False))


@dataclass(frozen=True)
class FarmLayout:
    """The files of one local farm under its data directory."""

    root: Path

    @classmethod
    def default(cls) -> FarmLayout:
        return cls(default_data_dir())

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    @property
    def admin_token_file(self) -> Path:
        return self.server_dir / "admin.token"

    @property
    def manager_dir(self) -> Path:
        return self.root / "manager"

    @property
    def manager_token_file(self) -> Path:
        return self.root / "manager.token"

    @property
    def registration_secret_file(self) -> Path:
        return self.manager_dir / "worker-registration.secret"

    @property
    def render_root(self) -> Path:
        return self.manager_dir / "render"

    def worker_dir(self, name: str | int) -> Path:
        return self.root / f"worker-{name}"

    @property
    def farm_dir(self) -> Path:
        """The supervisor's own files: the record of its processes, its lock, its log, requests to it."""
        return self.root / "farm"

    @property
    def demo_dir(self) -> Path:
        return self.root / "demo"

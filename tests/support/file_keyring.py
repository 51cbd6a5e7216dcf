"""A keyring backend for tests' child processes (PYTHON_KEYRING_BACKEND=tests.support.file_keyring.TestKeyring):
secrets in the JSON file named by TABLAO_TEST_KEYRING, so the tray and its worker child share them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class TestKeyring(KeyringBackend):
    priority = 1

    @property
    def path(self) -> Path:
        return Path(os.environ["TABLAO_TEST_KEYRING"])

    def _all(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._all().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._all()
        data[f"{service}\n{username}"] = password
        self.path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._all()
        data.pop(f"{service}\n{username}", None)
        self.path.write_text(json.dumps(data))

"""The tray's worker keeps its credentials in the keyring and writes no file; a missing keyring is said plainly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring

from services.worker import credentials
from services.worker.credentials import Credentials


class _Memory(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture
def memory() -> Iterator[_Memory]:
    previous = keyring.get_keyring()
    backend = _Memory()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_credentials_in_the_keyring_leave_no_file(memory: _Memory, tmp_path: Path) -> None:
    creds = Credentials("http://127.0.0.1:1", "w-1", "s3cret")
    assert credentials.load(tmp_path, creds.manager_url, in_keyring=True) is None
    credentials.save(tmp_path, creds, in_keyring=True)
    assert list(tmp_path.iterdir()) == []
    assert credentials.load(tmp_path, creds.manager_url, in_keyring=True) == creds
    assert credentials.load(tmp_path, "http://elsewhere:2", in_keyring=True) is None
    assert ("tablao-worker", str(tmp_path.resolve())) in memory.secrets


def test_no_keyring_is_a_clear_error(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(ValueError, match=r"no secure keyring.*must be given again"):
            credentials.save(tmp_path, Credentials("http://x", "w", "s"), in_keyring=True)
        with pytest.raises(ValueError, match="cannot be read") as caught:
            credentials.load(tmp_path, "http://x", in_keyring=True)
        # from an audit: it blamed a damaged worker.json, which the tray's worker never writes
        said = str(caught.value)
        assert "worker.json" not in said and "system keyring" in said and str(tmp_path.resolve()) in said, said
        assert not (tmp_path / "worker.json").exists()
    finally:
        keyring.set_keyring(previous)


def test_a_damaged_keyring_entry_names_the_entry(memory: _Memory, tmp_path: Path) -> None:
    memory.secrets[("tablao-worker", str(tmp_path.resolve()))] = "not json"
    with pytest.raises(ValueError, match="in the system keyring") as caught:
        credentials.load(tmp_path, "http://x", in_keyring=True)
    assert "worker.json" not in str(caught.value) and "delete that entry" in str(caught.value)

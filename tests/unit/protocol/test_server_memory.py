"""The command-line client's memory of which of several Servers answered last: kept per address list, for a
while; a file missing, corrupt or unwritable costs only the memory, never the command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from services.protocol.server_memory import MAX_FARMS, REMEMBERED_FOR, ServerMemory

URLS = ["http://s1:8470", "http://s2:8470", "http://s3:8470"]


def test_what_answered_is_recalled_for_that_list_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "servers.json"
    ServerMemory(path).keep(URLS, 2)
    assert ServerMemory(path).recall(URLS) == 2
    assert ServerMemory(path).recall(URLS[:2]) is None
    assert ServerMemory(path).recall(list(reversed(URLS))) is None
    text = path.read_text()
    assert "s1" not in text and "8470" not in text  # no address (it may hold a user and password) is written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["servers.json"]  # no temporary file left


def test_a_memory_ends_after_a_while_and_the_first_answering_clears_it(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    ServerMemory(path, now=1000.0).keep(URLS, 1)
    assert ServerMemory(path, now=1000.0 + REMEMBERED_FOR - 1).recall(URLS) == 1
    assert ServerMemory(path, now=1000.0 + REMEMBERED_FOR + 1).recall(URLS) is None  # the first is asked again
    assert ServerMemory(path, now=900.0).recall(URLS) is None  # a clock set back: not trusted
    memory = ServerMemory(path, now=1010.0)
    assert memory.recall(URLS) == 1
    memory.keep(URLS, 0)
    assert ServerMemory(path, now=1010.0).recall(URLS) is None


def test_the_same_answer_again_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    ServerMemory(path, now=1000.0).keep(URLS, 1)
    before = path.stat().st_mtime_ns
    path.chmod(0o400)  # a write would fail silently; the content shows it did not happen either
    memory = ServerMemory(path, now=1100.0)
    assert memory.recall(URLS) == 1
    memory.keep(URLS, 1)
    assert path.stat().st_mtime_ns == before and json.loads(path.read_text())["farms"]
    ServerMemory(tmp_path / "none.json").keep(URLS, 0)  # the first, with nothing remembered: no file made
    assert not (tmp_path / "none.json").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe", b"[]", b'{"farms": []}', b'{"farms": {"x": 1}}', b"[" * 100_000, b" " * 70_000],
)
def test_a_file_that_is_not_what_was_written_is_no_memory(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "servers.json"
    path.write_bytes(content)
    assert ServerMemory(path).recall(URLS) is None
    ServerMemory(path).keep(URLS, 1)  # written anew
    assert ServerMemory(path).recall(URLS) == 1


def test_a_place_not_in_the_list_is_no_memory(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    ServerMemory(path).keep(URLS, 2)
    farms = json.loads(path.read_text())["farms"]
    for index in (5, -1, "1", True, None):
        entry = next(iter(farms.values()))
        entry["index"] = index
        path.write_text(json.dumps({"farms": farms}))
        assert ServerMemory(path).recall(URLS) is None, index


def test_an_unusable_place_costs_only_the_memory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    ServerMemory(tmp_path / "file" / "servers.json").keep(URLS, 1)  # its folder is a file
    ServerMemory(tmp_path).keep(URLS, 1)  # a folder where the file should be
    assert ServerMemory(tmp_path).recall(URLS) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_costs_only_the_memory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    ServerMemory(locked / "servers.json").keep(URLS, 1)
    assert ServerMemory(locked / "servers.json").recall(URLS) is None


def test_only_the_latest_lists_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    for i in range(MAX_FARMS + 5):
        ServerMemory(path, now=1000.0 + i).keep([f"http://a{i}", f"http://b{i}"], 1)
    now = 1000.0 + MAX_FARMS + 5
    assert len(json.loads(path.read_text())["farms"]) == MAX_FARMS
    assert ServerMemory(path, now=now).recall(["http://a0", "http://b0"]) is None
    assert ServerMemory(path, now=now).recall([f"http://a{MAX_FARMS + 4}", f"http://b{MAX_FARMS + 4}"]) == 1

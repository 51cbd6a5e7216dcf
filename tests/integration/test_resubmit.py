"""A submission whose answer is lost on the way back (a real Server process behind a proxy that closes the
connection as the answer comes): the Python client, `tablao submit` and the Blender add-on send it again with
the same Idempotency-Key and come away with the one job the Server made, never two."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from resources.addon_zip import ADDON_DIR
from services.protocol import resubmit
from services.protocol.server_client import ServerClient
from tests.support.lossy_proxy import LossyProxy
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command

_spec = importlib.util.spec_from_file_location("tablao_addon_farm_resubmit", ADDON_DIR / "farm.py")
assert _spec is not None and _spec.loader is not None
farm = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = farm
_spec.loader.exec_module(farm)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    yield srv
    srv.stop()


def body(name: str) -> dict[str, Any]:
    return {"name": name, "type": "exec", "settings": {"command": ["true"], "frames": "1-2", "chunk_size": 1}}


@pytest.mark.parametrize(("lose", "how"), [(1, "drop"), (3, "drop"), (2, "cut"), (2, "502")])
async def test_the_client_sends_a_lost_submission_again_and_one_job_is_made(
    server: ServerProcess, lose: int, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.05,) * 4)
    name = f"client-lost-{lose}-{how}"
    with LossyProxy(server.port, lose=lose, how=how) as proxy:
        async with ServerClient(proxy.url, server.admin_token) as client:
            job = await client.submit_job(body(name))
        assert proxy.lost == lose
    assert server.jobs_named(name) == [job.id]


async def test_more_lost_answers_than_tries_fail_and_the_same_key_then_gets_the_job(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.05,) * 2)
    name = "client-lost-all"
    with LossyProxy(server.port, lose=10) as proxy:
        async with ServerClient(proxy.url, server.admin_token) as client:
            with pytest.raises(httpx.TransportError):
                await client.submit(body(name), "lost-all/v1")
        assert proxy.lost == 3
    made = server.jobs_named(name)
    assert len(made) == 1  # the first try made it; the two repeats did not make more
    async with ServerClient(server.url, server.admin_token) as client:
        again = await client.submit(body(name), "lost-all/v1")
    assert again.job.id == made[0] and again.made_before
    assert server.jobs_named(name) == made


async def test_a_server_never_reached_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (60.0,))  # a retry would hang the test
    async with ServerClient("http://127.0.0.1:9", "t") as client:
        with pytest.raises(httpx.ConnectError):
            await client.submit_job(body("never"))


def tablao_submit(server: ServerProcess, job_file: Path, url: str, *more: str) -> subprocess.CompletedProcess[str]:
    args = ["submit", "--server", url, *more, str(job_file)]
    env = child_env(TABLAO_TOKEN=server.admin_token)
    return subprocess.run(tablao_command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_tablao_submit_sends_a_lost_submission_again_and_a_rerun_with_its_key_makes_no_second_job(
    server: ServerProcess, tmp_path: Path
) -> None:
    name = "cli-lost"
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(body(name)))
    key = ("--idempotency-key", "shot-010/lighting/v3")
    with LossyProxy(server.port, lose=1) as proxy:
        first = tablao_submit(server, job_file, proxy.url, *key)
        assert proxy.lost == 1
    assert first.returncode == 0, first.stderr
    made = server.jobs_named(name)
    assert len(made) == 1 and first.stdout.startswith(f"submitted job {made[0]} "), first.stdout
    rerun = tablao_submit(server, job_file, server.url, *key)
    assert rerun.returncode == 0, rerun.stderr
    assert f"job {made[0]} (cli-lost) was submitted already with this key" in rerun.stdout
    assert server.jobs_named(name) == made
    job_file.write_text(json.dumps({**body(name), "priority": 70}))
    changed = tablao_submit(server, job_file, server.url, *key)
    assert changed.returncode == 1 and "Idempotency-Key" in changed.stderr + changed.stdout
    assert server.jobs_named(name) == made


@pytest.mark.parametrize(
    ("lose", "then_refuse", "says"),
    [(100, False, "cannot reach the Server: "), (1, True, "cannot reach the Server: connection refused")],
    ids=["every answer lost", "the Server gone after storing it"],
)
def test_tablao_submit_that_may_have_made_its_job_names_the_key_that_gets_it(
    server: ServerProcess, tmp_path: Path, lose: int, then_refuse: bool, says: str
) -> None:
    """Every try's answer was lost; or the first try reached the Server, which stored the job and went away, and
    every later try is refused a connection: the command says which key gets the job rather than a second one."""
    name = f"cli-unanswered-{lose}"
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(body(name)))
    with LossyProxy(server.port, lose=lose, then_refuse=then_refuse) as proxy:
        failed = tablao_submit(server, job_file, proxy.url)
        assert proxy.lost == min(lose, 1 + len(resubmit.LOST_ANSWER_WAITS))
    assert failed.returncode == 1 and says in failed.stderr, failed.stderr
    hint = re.search(r"run the command again with --idempotency-key (\S+) to get it", failed.stderr)
    assert hint is not None, failed.stderr
    made = server.jobs_named(name)
    assert len(made) == 1
    again = tablao_submit(server, job_file, server.url, "--idempotency-key", hint.group(1))
    assert again.returncode == 0 and f"job {made[0]} ({name}) was submitted already" in again.stdout
    assert server.jobs_named(name) == made


def test_tablao_submit_refuses_a_malformed_key(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(body("x")))
    args = ["submit", "--server", "http://127.0.0.1:9", "--idempotency-key", "has space", str(job_file)]
    done = subprocess.run(tablao_command(*args), cwd=ROOT, env=child_env(TABLAO_TOKEN="t"), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "printable ASCII" in done.stderr, done.stderr


def test_the_addon_tries_again_once_and_a_second_press_of_submit_makes_no_second_job(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(farm, "RETRY_AFTER_SECONDS", 0.05)
    name = "addon-lost"
    with LossyProxy(server.port, lose=1) as proxy:
        job = farm.submit(farm.Connection(proxy.url, server.admin_token), body(name))
        assert proxy.lost == 1
    assert server.jobs_named(name) == [job["id"]]
    name = "addon-cut"
    with LossyProxy(server.port, lose=1, how="cut") as proxy:  # the answer's head comes, its body is cut off
        job = farm.submit(farm.Connection(proxy.url, server.admin_token), body(name))
        assert proxy.lost == 1
    assert server.jobs_named(name) == [job["id"]]
    name = "addon-lost-twice"
    with LossyProxy(server.port, lose=2) as proxy:
        conn = farm.Connection(proxy.url, server.admin_token)
        with pytest.raises(farm.FarmError, match="Submit again: the job will not be made twice") as lost:
            farm.submit(conn, body(name))
        assert lost.value.unanswered and proxy.lost == 2
        again = farm.submit(conn, body(name))  # the artist presses Submit again
    assert server.jobs_named(name) == [again["id"]]
    other = farm.submit(farm.Connection(server.url, server.admin_token), body(name))
    assert other["id"] != again["id"]  # answered: the next press is a new job
    name = "addon-server-gone"
    with (  # stored, then the Server went away
        LossyProxy(server.port, lose=1, then_refuse=True) as proxy,
        pytest.raises(farm.FarmError, match="Submit again: the job will not be made twice"),
    ):
        farm.submit(farm.Connection(proxy.url, server.admin_token), body(name))
    # pressed again while the Server is still away (nothing reached it this time): the key is still kept
    with pytest.raises(farm.FarmError, match="Submit again") as away:
        farm.submit(farm.Connection("http://127.0.0.1:9", server.admin_token), body(name))
    assert "Cannot reach" in away.value.message
    back = farm.submit(farm.Connection(server.url, server.admin_token), body(name))  # pressed again once it is back
    assert server.jobs_named(name) == [back["id"]]

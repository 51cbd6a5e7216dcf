"""The idle worker's spare: a confined process held before any program, which becomes the next task's first process
word for word when a start now would make that process alike, and otherwise ends without running anything.
Real processes, started from their own thread through setpriv (Linux)."""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

import psutil
import pytest

from services.worker import landlock, task_policy
from services.worker.runners import gates, offer, spare
from services.worker.runners.process import run_process
from tests.unit.worker.test_warm_start import SH, _gone, _made, _protected_secret, _until_gone, pytestmark  # noqa: F401

# prints its process id, its arguments one per line as Python's repr, then its environment
_SHOW = (
    "import os, sys; print(os.getpid()); print(*map(repr, sys.argv[1:]), sep=chr(10)); "
    "print(*sorted(f'{k}={v}' for k, v in os.environ.items()), sep=chr(10))"
)


async def _run(held: spare.Spare | None, argv: list[str], **kwargs: object) -> tuple[int, list[str]]:
    offer.offer(held)
    lines: list[str] = []
    status = await run_process(argv, lines.append, **kwargs)  # type: ignore[arg-type]
    return status, lines


@pytest.mark.parametrize(
    "words",
    [
        ["plain"],
        ["two words", "  leading and trailing  ", "\ttab"],
        ["line one\nline two", "ends with a newline\n", "\n", ""],
        ["$HOME", "$(touch PWNED)", "`id`", "*", "'", '"', "\\", "a;b", "-e", "--"],
        ["é ünïcödé", "\udcff\udcfe not utf-8"],
    ],
    ids=["plain", "spaces", "newlines", "shell-syntax", "encodings"],
)
async def test_the_spare_runs_the_command_line_word_for_word_as_a_direct_start_does(
    words: list[str], tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"  # what a word parsed as shell would make
    argv = [sys.executable, "-c", _SHOW, *(w.replace("PWNED", str(pwned)) for w in words)]
    direct_status, direct = await _run(None, argv)
    held = spare.begin({})
    assert held is not None
    pid = await _made(held)
    status, lines = await _run(held, argv)
    assert (status, direct_status) == (0, 0)
    assert lines[0] == str(pid)  # the held process became the program
    assert lines[1:] == direct[1:]  # the same words, the same environment
    assert not pwned.exists()


async def test_nothing_runs_until_a_command_takes_it_and_a_discarded_spare_ends_unrun(tmp_path: Path) -> None:
    data = tmp_path / "worker"
    task_policy.use_policy(task_policy.effective_policy(task_policy.TaskPolicy(), data))
    held = spare.begin({})
    assert held is not None
    pid = await _made(held)
    await asyncio.sleep(0.2)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and held.usable()
    if landlock.abi_version() >= 1:
        assert len(list((data / "scratch").iterdir())) == 1  # its private temporary folder, made ahead
    held.discard()
    await _until_gone(pid)
    await asyncio.sleep(0.2)
    assert not held.usable()
    if landlock.abi_version() >= 1:
        assert list((data / "scratch").iterdir()) == []


async def test_a_spare_given_up_before_it_was_made_never_runs() -> None:
    held = spare.begin({})
    assert held is not None
    held.discard()
    await asyncio.sleep(0.5)
    assert held.pid is None or _gone(held.pid)


@pytest.mark.parametrize("kind", ["own-folder", "own-variables", "changed-environment", "too-long", "text-file"])
async def test_a_command_the_spare_cannot_stand_for_gets_a_new_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    argv = [sys.executable, "-c", _SHOW]
    kwargs: dict[str, object] = {}
    if kind == "own-folder":
        kwargs["cwd"] = str(tmp_path)
    elif kind == "own-variables":
        kwargs["env"] = {"STAGE": "lighting"}
    elif kind == "too-long":
        argv.append("x" * 5000)  # more than the pipe takes in one write
    elif kind == "text-file":
        script = tmp_path / "no-interpreter"
        script.write_text("echo $$\n")  # a shell's `exec` runs it as a shell script, where execve refuses it
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        argv = [str(script)]
    held = spare.begin({})
    assert held is not None
    pid = await _made(held)
    if kind == "changed-environment":
        monkeypatch.setenv("LANG", "tablao-test.UTF-8")  # inherited by tasks: the spare, made before, lacks it
        assert not held.usable()
    status, lines = await _run(held, argv, **kwargs)
    assert status == 0 and lines[0] != str(pid)  # a direct start ran it, as it would have without a spare
    if kind == "changed-environment":
        assert "LANG=tablao-test.UTF-8" in lines
    await _until_gone(pid)  # and the spare ended without running anything


async def test_a_missing_program_is_reported_as_a_direct_start_reports_it() -> None:
    held = spare.begin({})
    assert held is not None
    pid = await _made(held)
    with pytest.raises(Exception, match="program or working directory not found"):
        await _run(held, ["tablao-no-such-program"])
    await _until_gone(pid)


async def test_the_spare_is_confined_like_any_task_process(tmp_path: Path) -> None:
    argv = _protected_secret(tmp_path)
    held = spare.begin({})
    assert held is not None
    pid = await _made(held)
    _, lines = await _run(held, argv)
    text = "\n".join(lines)
    assert lines[0] == str(pid)
    assert "s3cret" not in text and "Permission denied" in text


async def test_output_roots_written_with_a_path_variable_confine_a_task_to_its_own_roots(
    tmp_path: Path,
) -> None:
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    shot, elsewhere = tmp_path / "shot", tmp_path / "elsewhere"
    elsewhere.mkdir()
    policy = task_policy.TaskPolicy(output_roots=("{render_root}",))
    task_policy.use_policy(task_policy.effective_policy(policy, tmp_path / "w"))
    argv = [SH, "-c", f"echo $$; echo f > {shot}/f.txt; echo g > {elsewhere}/g.txt"]
    task_policy.use_variables({"render_root": str(shot)})  # this task's
    for expected, fits in (({}, False), ({"render_root": str(elsewhere)}, False), ({"render_root": str(shot)}, True)):
        held = spare.begin(expected)
        assert held is not None
        pid = await _made(held)
        _, lines = await _run(held, argv)
        assert (lines[0] == str(pid)) is fits  # only a spare confined to this task's roots stands for its process
        assert (shot / "f.txt").read_text() == "f\n" and not (elsewhere / "g.txt").exists()
        (shot / "f.txt").unlink()
        if not fits:
            await _until_gone(pid)


def test_the_gates_keep_their_words_in_variables_no_task_gets() -> None:
    for name in (gates.GATE_WORD, "tablao_gate_args", "tablao_gate_arg", "tablao_gate_lines"):
        assert name in gates._SPARE_SCRIPT or name in gates._PREFETCHED_SCRIPT
        with pytest.raises(ValueError, match=name):
            gates.spare({name: "x"})
    assert gates.spare_message([]) is None and gates.spare_message(["a\0b"]) is None
    assert gates.spare_message(["x" * (4096 - 10)]) is not None and gates.spare_message(["x" * 5000]) is None

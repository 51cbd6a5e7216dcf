"""One rule for a tag wherever one is given: a job's required tags, a worker's sign-on tags and a wrangler's
edit take and refuse the same values, so a worker's own tags can always be sent back unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.protocol.jobs import JobSubmission
from services.protocol.platforms import Platform
from services.protocol.tags import TAG_PATTERN, normal_tag, required_tags, worker_tags
from services.protocol.worker_api import SignOnRequest
from services.protocol.workers import WorkerTagsBody


def job(tags: list[str]) -> Any:
    return JobSubmission(name="j", type="exec", tags=tags)


def sign_on(tags: list[str]) -> Any:
    return SignOnRequest(name="w1", platform=Platform.LINUX, task_types=["exec"], tags=tags)


def edit(tags: list[str]) -> Any:
    return WorkerTagsBody(tags=tags)


GOOD = ["gpu", "lic:nuke", "cuda-12.4", "a@b+c_d", "G" * 64, "9"]
BAD = ["rtx 4090", "gpu\n", "\ngpu", "-gpu", ".hidden", "", "g" * 65, "gpü", "a,b", "a;b", "a\x00", "\u202egpu"]


@pytest.mark.parametrize("model", [job, sign_on, edit])
def test_every_model_takes_the_same_tags(model: Any) -> None:
    assert sorted(model(GOOD).tags) == sorted(GOOD)


@pytest.mark.parametrize("model", [job, sign_on, edit])
@pytest.mark.parametrize("tag", BAD)
def test_every_model_refuses_the_same_tags_naming_the_one(model: Any, tag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model(["gpu", tag])
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [("tags", 1)]


def test_a_workers_own_tags_as_given_on_its_command_line() -> None:
    assert worker_tags(" gpu, lic:nuke ,, gpu ") == ["gpu", "lic:nuke"]
    assert worker_tags("") == []
    for text, why in (
        ("gpu, rtx 4090", "'rtx 4090' is not a tag"),
        (",".join(f"t{i}" for i in range(51)), "at most 50 tags"),
    ):
        with pytest.raises(ValueError, match=why):
            worker_tags(text)


@pytest.mark.parametrize(
    ("stored", "tag"),
    [
        ("rtx 4090", "rtx-4090"),
        (" gpu ", "gpu"),
        ("-gpu", "gpu"),
        ("a  b", "a-b"),
        ("x" * 70, "x" * 64),
        ("gpu\n", "gpu"),
        (".hidden", "hidden"),
        ("gpü", "gpu"),  # an accent dropped, not the letter: it used to be `gp`
        ("Ｒｅｎｄｅｒ", "Render"),  # full-width letters are the plain ones
        ("rtx – 4090", "rtx-4090"),  # punctuation from beyond ASCII is a dash like any other
        ("gpu·nvidia", "gpu-nvidia"),
    ],
)
def test_a_tag_stored_before_the_rule_stands_for_the_tag_a_worker_now_has(stored: str, tag: str) -> None:
    assert normal_tag(stored) == tag
    if stored.strip() != tag:  # a worker's --tags strips spaces itself; what is left is refused, saying the tag
        assert f"(as a tag: {tag!r})" in (worker_problem := _problem(stored)), worker_problem


def _problem(text: str) -> str:
    with pytest.raises(ValueError) as caught:
        worker_tags(text + ", gpu")
    return str(caught.value)


@pytest.mark.parametrize("text", [*GOOD, "!!!", "—", "日本", "a-"])
def test_every_normal_tag_is_a_tag_and_a_tag_stands_for_itself(text: str) -> None:
    tag = normal_tag(text)
    assert TAG_PATTERN.fullmatch(tag) and normal_tag(tag) == tag
    if TAG_PATTERN.fullmatch(text):
        assert tag == text
    assert normal_tag("!!!") != normal_tag("???")  # nothing of a tag: distinct, and no worker's by chance


def test_letters_with_no_plain_form_are_not_dropped_into_another_tag() -> None:
    assert normal_tag("gpu日本").startswith("gpu-") and normal_tag("gpu日本") != normal_tag("gpu中国")
    assert normal_tag("日本").startswith("tag-")
    assert TAG_PATTERN.fullmatch(normal_tag("x" * 60 + "日本"))


def test_a_jobs_required_tags_are_the_normal_ones() -> None:
    assert required_tags(["rtx 4090", "gpu", "gpu "]) == {"rtx-4090", "gpu"}
    assert required_tags(None) == set()

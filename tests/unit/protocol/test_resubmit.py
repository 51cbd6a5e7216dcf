"""Which failures of a submission are sent again (resubmit.py): lost answers a few times, a job still being
stored while it is, and nothing else (refusals, a Server never reached, the caller's own deadline)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.protocol import resubmit
from services.protocol.common import FieldError
from services.protocol.server_answers import AnswerTimeout, ApiError, BadAnswer
from services.protocol.server_client import ServerClient

REQUEST = httpx.Request("POST", "http://farm/api/v1/jobs")
STILL_STORING = ApiError(409, "job 7 is still being stored", [FieldError(field="Idempotency-Key", message="…")])


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.0,) * 4)
    monkeypatch.setattr(resubmit, "STILL_STORING_WAIT", 0.0)


def failing(*failures: BaseException) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A send that raises each failure in turn, then answers "job"; and how many times it was called."""
    calls = [0]

    async def send() -> str:
        calls[0] += 1
        if calls[0] <= len(failures):
            raise failures[calls[0] - 1]
        return "job"

    return send, calls


@pytest.mark.parametrize(
    "lost",
    [
        httpx.ReadTimeout("no answer", request=REQUEST),
        httpx.RemoteProtocolError("Server disconnected without sending a response", request=REQUEST),
        ApiError(502, "bad gateway"),
        ApiError(503, "no Server"),
        ApiError(504, "gateway timeout"),
    ],
    ids=["read timeout", "dropped", "502", "503", "504"],
)
async def test_a_lost_answer_is_sent_again_a_few_times(lost: BaseException) -> None:
    send, calls = failing(*[lost] * 4)
    assert await resubmit.until_answered(send) == "job" and calls[0] == 5
    send, calls = failing(*[lost] * 5)
    with pytest.raises(type(lost)):
        await resubmit.until_answered(send)
    assert calls[0] == 5


async def test_a_job_still_being_stored_is_asked_for_until_it_is_and_not_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    send, calls = failing(*[STILL_STORING] * 30)  # more than the lost-answer tries: these do not count
    assert await resubmit.until_answered(send) == "job" and calls[0] == 31
    monkeypatch.setattr(resubmit, "STILL_STORING_FOR", -1.0)  # waited too long already
    send, calls = failing(STILL_STORING, STILL_STORING)
    with pytest.raises(ApiError):
        await resubmit.until_answered(send)
    assert calls[0] == 1


@pytest.mark.parametrize(
    "final",
    [
        ApiError(422, "settings.frames: bad"),
        ApiError(409, "quota", [FieldError(field="quota", message="…")]),
        ApiError(403, "not for artists"),
        AnswerTimeout("the Server's answer did not come in whole within 2 s", request=REQUEST),
        httpx.ConnectError("refused", request=REQUEST),
    ],
    ids=["refused", "quota", "forbidden", "deadline", "never reached"],
)
async def test_refusals_a_server_never_reached_and_the_callers_deadline_are_not_sent_again(
    final: BaseException,
) -> None:
    send, calls = failing(final)
    with pytest.raises(type(final)):
        await resubmit.until_answered(send)
    assert calls[0] == 1
    assert resubmit.maybe_made(final) == isinstance(final, AnswerTimeout)


async def test_a_server_not_reached_on_a_later_try_is_tried_again() -> None:
    send, calls = failing(ApiError(502, "bad gateway"), httpx.ConnectError("refused", request=REQUEST))
    assert await resubmit.until_answered(send) == "job" and calls[0] == 3


async def test_a_failure_after_a_try_that_may_have_reached_the_server_says_so() -> None:
    """Try 1 reached the Server, which stored the job and went away; the later tries find no Server. The last
    failure looks like "never sent", but the job may have been made: the caller must name the key."""
    refused = httpx.ConnectError("refused", request=REQUEST)
    send, calls = failing(httpx.RemoteProtocolError("dropped", request=REQUEST), *[refused] * 4)
    with pytest.raises(httpx.ConnectError) as lost:
        await resubmit.until_answered(send)
    assert calls[0] == 5 and resubmit.maybe_made(lost.value)
    never = httpx.ConnectError("refused", request=REQUEST)
    send, calls = failing(never)
    with pytest.raises(httpx.ConnectError):
        await resubmit.until_answered(send)
    assert not resubmit.maybe_made(never)


async def test_no_try_starts_after_the_callers_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resubmit, "STILL_STORING_WAIT", 0.05)
    send, calls = failing(*[STILL_STORING] * 1000)
    started = time.monotonic()
    with pytest.raises(ApiError):
        await resubmit.until_answered(send, within=0.3)
    assert time.monotonic() - started < 0.6 and 3 <= calls[0] <= 8


async def test_the_client_bounds_its_tries_by_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resubmit, "STILL_STORING_WAIT", 1.0)  # the Server's Retry-After
    posts: list[float] = []

    def still_storing(request: httpx.Request) -> httpx.Response:
        posts.append(time.monotonic())
        body = {"detail": "job 7 is still being stored", "errors": [{"field": "Idempotency-Key", "message": "…"}]}
        return httpx.Response(409, json=body, headers={"Retry-After": "1"})

    transport = httpx.MockTransport(still_storing)
    async with ServerClient("http://farm", "t", transport=transport, deadline=0.5) as client:
        with pytest.raises(ApiError) as refused:
            await client.submit_job({"name": "j", "type": "exec", "settings": {}})
    assert refused.value.status_code == 409 and len(posts) == 1  # the next try would start after the deadline


def test_an_answer_not_understood_after_the_job_was_made_counts_as_maybe_made() -> None:
    assert resubmit.maybe_made(BadAnswer(201, "a status this client does not know"))
    assert not resubmit.maybe_made(BadAnswer(404, "not JSON"))

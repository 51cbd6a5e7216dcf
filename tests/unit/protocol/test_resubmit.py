"""Which failures of a submission are sent again (resubmit.py): lost answers a few times, a job still being
stored while it is, and nothing else (refusals, a Server never reached, the caller's own deadline)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.protocol import resubmit
from services.protocol.common import FieldError
from services.protocol.server_answers import AnswerTimeout, ApiError

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

"""A user's reason for an action (pause, requeue, release) is one line of the job log: from a
role-matrix audit, an artist's pause with `ok\\n<time> admin: job approved by admin\\u202e` wrote a forged entry
there for every client but `tablao job`, which escapes what it prints."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from services.protocol.failures import ReleaseRequest
from services.protocol.jobs import BulkJobRequest, JobActionRequest, TaskActionRequest

REQUESTS: list[tuple[type[BaseModel], dict[str, object]]] = [
    (JobActionRequest, {"action": "pause"}),
    (BulkJobRequest, {"ids": [1], "action": "pause"}),
    (TaskActionRequest, {"action": "cancel"}),
    (ReleaseRequest, {}),
]


@pytest.mark.parametrize(("model", "body"), REQUESTS)
@pytest.mark.parametrize("reason", ["ok\n2026-12-07 admin: approved", "a\rb", "\u202eevil", "a\u2028b", "a\x00b"])
def test_a_reason_holding_a_line_break_control_or_override_is_refused_naming_it(
    model: type[BaseModel], body: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**body, "reason": reason})
    assert [e["loc"] for e in refused.value.errors()] == [("reason",)]


@pytest.mark.parametrize(("model", "body"), REQUESTS)
def test_a_reason_of_one_line_is_kept_trimmed_and_none_is_fine(model: type[BaseModel], body: dict[str, object]) -> None:
    assert model.model_validate({**body, "reason": "  retake: the lamp flickers \n"}).reason == (  # type: ignore[attr-defined]
        "retake: the lamp flickers"
    )
    assert model.model_validate(body).reason == ""  # type: ignore[attr-defined]

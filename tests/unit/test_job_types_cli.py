"""`tablao job-types` says which types the farm's policy keeps from the caller, as the Server told it."""

from __future__ import annotations

from services.job_types_cli import describe, refused
from services.protocol.jobs import JobTypeInfo
from services.protocol.states import Role

SCHEMA = {"properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}


def _info(**policy: object) -> JobTypeInfo:
    return JobTypeInfo.model_validate(
        {"name": "exec", "label": "Command", "description": "runs a command", "settings_schema": SCHEMA, **policy}
    )


def test_a_type_the_caller_may_submit_says_nothing_more() -> None:
    assert refused(_info(may_submit=True, submit_roles=[Role.ARTIST, Role.WRANGLER])) == ""
    assert "not for you" not in describe(_info())  # an older Server says neither: offered as before


def test_a_refused_type_names_the_roles_it_is_for() -> None:
    info = _info(may_submit=False, submit_roles=[Role.ADMIN, Role.WRANGLER])
    assert refused(info) == "not for you: the farm's policy reserves it for admin or wrangler"
    assert "(not for you: the farm's policy reserves it for admin or wrangler)" in describe(info).splitlines()[3]


def test_a_type_no_role_may_submit_says_so() -> None:
    assert refused(_info(may_submit=False, submit_roles=[])).endswith("reserves it for no role")

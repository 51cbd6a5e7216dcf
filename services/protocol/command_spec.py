"""How one command of the contract is described, built and checked: `CommandSpec` and its errors.

`commands.py` declares the commands themselves with it; the Server's job types call a spec to build a
command, the Worker's runners validate their parameters through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

P = TypeVar("P")


class InvalidParameters(ValueError):
    """Parameters that do not fit their command's record; the message names the command and parameter."""


_REPR_MAX = 80


@dataclass(frozen=True, eq=False)
class CommandSpec(Generic[P]):
    """One command of the contract: its name, its parameter record, and what it does.

    Calling it builds the command dict a task holds: `BLENDER_RENDER({"blendfile": ..., ...})`.
    """

    name: str
    # the parameter record (P at run time; an annotated union for commands with several shapes)
    record: Any
    summary: str
    # the parameter whose value selects the shape, for commands with several
    discriminator: str | None = None
    example: dict[str, Any] = field(default_factory=dict)

    def __call__(self, parameters: P) -> dict[str, Any]:
        return {"name": self.name, "parameters": parameters}

    @cached_property
    def adapter(self) -> TypeAdapter[P]:
        # built on first use: a worker pays only for the commands it runs
        return TypeAdapter(self.record)

    def validate(self, parameters: Any) -> P:
        """The parameters checked against the record; InvalidParameters names what is wrong."""
        try:
            return self.adapter.validate_python(parameters)
        except ValidationError as exc:
            raise InvalidParameters(self._describe(exc)) from None

    def _describe(self, exc: ValidationError) -> str:
        problems = []
        for error in exc.errors(include_url=False)[:3]:
            loc = list(error["loc"])
            message, shown = error["msg"], error.get("input")
            if self.discriminator is not None:
                # a tagged union's location starts with the tag's value; errors about the tag itself have none
                loc = loc[1:] if loc else [self.discriminator]
                context = error.get("ctx") or {}
                if error["type"] == "union_tag_invalid":
                    message, shown = f"must be one of {context.get('expected_tags')}", context.get("tag")
                elif error["type"] == "union_tag_not_found":
                    error["type"], message = "missing", "Field required"
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            text = f"parameter '{where}': " if where else "parameters: "
            text += message[:1].lower() + message[1:]
            if error["type"] != "missing":
                got = repr(shown)
                text += f", got {got if len(got) <= _REPR_MAX else got[: _REPR_MAX - 1] + '…'}"
            problems.append(text)
        more = exc.error_count() - len(problems)
        return f"{self.name}: " + "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def tagged(first: Any, second: Any, *, tag: str) -> Any:
    """A record of two shapes, told apart by the value of the parameter `tag`."""
    return Annotated[first | second, Field(discriminator=tag)]

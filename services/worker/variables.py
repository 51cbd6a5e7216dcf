"""Path variables: replace `{name}` in a command's string parameters with this worker's value for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.protocol.variable_names import BRACED


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """Return value with every `{name}` whose name is in `variables` replaced, recursively.

    Other braces (`{unknown}`, `{}`, Python or JSON text in a parameter) stay as they are. Dict keys are
    left alone: they name parameters, not paths.
    """
    if not variables:
        return value
    if isinstance(value, str):
        if "{" not in value:
            return value
        return BRACED.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value

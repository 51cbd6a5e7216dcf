"""What openjd-model lets through or cannot do for a Server, checked here: counting a parameter space past 2**63
tasks, a job parameter's bound of 0, FLOAT values that are not finite, and numbers written other than in ASCII
digits."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

from openjd.model import JobTemplate, StepParameterSpaceIterator
from openjd.model._step_param_space_iter import AssociationNode, Node, ProductNode


def space_size(space: StepParameterSpaceIterator) -> int:
    """How many tasks a step's parameter space makes, counted without listing any.

    `len()` of openjd-model's space is an index-sized integer: past 2**63 combinations (two INT ranges of four
    billion values) it raised OverflowError, a 500. Its expression tree is multiplied out here instead, as Python
    integers of any size, without recursing (a combination may be deeply bracketed).
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(space._expr_tree, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, ProductNode | AssociationNode) and not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in node.children)
        elif isinstance(node, ProductNode):
            sizes[id(node)] = math.prod(sizes[id(child)] for child in node.children)
        elif isinstance(node, AssociationNode):
            sizes[id(node)] = sizes[id(node.children[0])]  # the model checks that the associated lengths agree
        else:  # one parameter's values or chunks, which the model has listed or counted itself
            sizes[id(node)] = node.__len__()
    return sizes[id(space._expr_tree)]


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|s?nan)", re.IGNORECASE)


def plain_numbers(template: JobTemplate, values: Mapping[str, str]) -> dict[str, str]:
    """The values with each INT written as its digits (`7` for ` 7 `, `+7` or `07`) and each FLOAT without spaces
    around it; ValueError, naming the parameter, for a number in other characters. Python's int() and Decimal
    took `1_000` and Arabic-Indic digits (`٣`), which went on to the task's command line as they were typed."""
    kinds = {d.name: str(getattr(d.type, "value", d.type)) for d in template.parameterDefinitions or []}
    out = dict(values)
    for name, raw in values.items():
        kind = kinds.get(name)
        if kind not in ("INT", "FLOAT") or not isinstance(raw, str):
            continue
        text = raw.strip()
        if kind == "INT" and _INT.fullmatch(text):
            out[name] = str(int(text))
        elif kind == "FLOAT" and _FLOAT.fullmatch(text):
            out[name] = text  # not finite: check_numbers says so
        else:
            raise ValueError(f"Value ({raw}) for parameter {name} must be a number written in ASCII digits.")
    return out


def check_numbers(template: JobTemplate, values: Mapping[str, str], what: str = "Value") -> None:
    """ValueError, in openjd-model's words, for an INT or FLOAT value outside its definition's minValue or maxValue,
    or a FLOAT that is not finite; values the model cannot read as numbers are left to its own refusal.

    openjd-model skips a bound of 0 (`if self.minValue and value < self.minValue`): `N=-5` ran against
    `minValue: 0`. It takes `nan`, `inf` and `1e400` (past a float's range) for a FLOAT too, which a template
    may not hold.
    """
    for definition in template.parameterDefinitions or []:
        raw = values.get(definition.name)
        kind = str(getattr(definition.type, "value", definition.type))
        if raw is None or kind not in ("INT", "FLOAT"):
            continue
        value: int | Decimal
        try:
            value = int(raw) if kind == "INT" else Decimal(raw)
            finite = isinstance(value, int) or (value.is_finite() and math.isfinite(float(value)))
        except (ValueError, ArithmeticError):
            continue
        said = f"{what} ({raw}) for parameter {definition.name}"
        if not finite:
            raise ValueError(f"{said} must be a finite number, within a float's range (1.8e308).")
        low, high = getattr(definition, "minValue", None), getattr(definition, "maxValue", None)
        if low is not None and value < low:
            raise ValueError(f"{said} must be at least {low}.")
        if high is not None and value > high:
            raise ValueError(f"{said} must be at most {high}.")

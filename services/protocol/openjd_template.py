"""Reads an Open Job Description job template from YAML or JSON text, safely, for the CLI, the app and the Server.

A template is user input that the Server compiles: the text is bounded in size, YAML anchors and aliases are
refused (an alias "bomb" expands exponentially once turned into JSON), and only plain data comes back: JSON's
data, with text keys given once each and no NaN or infinity (which openjd-model's numbers cannot hold).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from services.protocol.common import JSON_MAX_DEPTH, json_depth

MAX_TEMPLATE_BYTES = 256 * 1024
SPECIFICATION = "jobtemplate-2023-09"
# Extensions Tablao implements; a template naming another is refused by openjd-model with its reason.
SUPPORTED_EXTENSIONS = ("TASK_CHUNKING",)


class TemplateTextError(ValueError):
    """The text is not a template document; the message says why, in one line."""


# libyaml's parser where PyYAML has it (every wheel does): the pure-Python one took 2.7 s for a 256 KiB flow list
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SAFE_LOADER):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping (PyYAML keeps the last without a word)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in seen:
                    raise TemplateTextError(f"the key {key.value!r} is given twice (line {key.start_mark.line + 1})")
                seen.add((key.tag, key.value))
        return super().construct_mapping(node, deep=deep)


_TOO_DEEP = f"the template is nested more than {JSON_MAX_DEPTH} levels deep"
_NOT_A_NUMBER = "NaN and infinity are not numbers a template may hold"


def parse_template_text(text: str) -> dict[str, Any]:
    """The template document as a dict; TemplateTextError when it is too big, malformed or not a mapping."""
    size = len(text.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateTextError(f"the template is {size} bytes; at most {MAX_TEMPLATE_BYTES} are accepted")
    not_json: json.JSONDecodeError | None = None
    try:
        if text.lstrip().startswith("{"):
            try:
                return _checked(json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys))
            except json.JSONDecodeError as exc:
                not_json = exc  # or a YAML flow mapping, `{specificationVersion: …}`, which begins the same way
        _no_alias(text)
        # YAML dates and the like become strings, as the same template written in JSON would hold
        data = json.loads(json.dumps(yaml.load(text, _Loader), default=str, allow_nan=False))
    except TemplateTextError:
        raise
    except yaml.YAMLError as exc:
        if "exceeded maximum nesting depth" in str(exc):  # libyaml's own bound (1,000 levels)
            raise TemplateTextError(_TOO_DEEP) from exc
        if not_json is not None:
            raise TemplateTextError(f"not valid JSON: {not_json}") from exc
        # the parser names its input "<unicode string>": the line and column say where, the caller says which file
        said = " ".join(str(exc).split()).replace(' in "<unicode string>",', " at")
        raise TemplateTextError(f"not valid YAML: {said}") from exc
    except RecursionError as exc:  # YAML's and JSON's parsers recurse per level: `[[[[…` 1,000 deep ends here
        raise TemplateTextError(_TOO_DEEP) from exc
    except TypeError as exc:  # a key that is a date or binary data (`!!binary`): JSON keys are text
        kind = str(exc).rpartition("not ")[2]
        raise TemplateTextError(f"a key of the template is a {kind}, not text; put it in quotes") from exc
    except ValueError as exc:  # `.nan` or `.inf` in YAML
        raise TemplateTextError(_NOT_A_NUMBER) from exc
    return _checked(data)


def _no_alias(text: str) -> None:
    """Refuse YAML anchors' aliases from the event stream, before anything is built (a "bomb" of them expands
    exponentially once turned into JSON)."""
    for event in yaml.parse(text, _SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            where = f" (line {event.start_mark.line + 1})" if event.start_mark is not None else ""
            raise TemplateTextError(f"YAML aliases are not accepted in job templates{where}; write the value out")


def _no_constant(name: str) -> Any:
    raise TemplateTextError(_NOT_A_NUMBER + f" ({name})")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise TemplateTextError(f"the key {twice!r} is given twice")
    return data


def _checked(data: Any) -> dict[str, Any]:
    """The parsed template, if it is a mapping nested no deeper than any JSON the farm takes."""
    if json_depth(data) > JSON_MAX_DEPTH:
        raise TemplateTextError(_TOO_DEEP)
    if not isinstance(data, dict):
        raise TemplateTextError("a job template is a mapping with specificationVersion, name and steps")
    return data


def template_size(template: dict[str, Any]) -> int:
    """Bytes of the template as compact JSON, the form in which it is stored."""
    return len(json.dumps(template, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

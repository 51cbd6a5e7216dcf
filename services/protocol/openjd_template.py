"""Reads an Open Job Description job template from YAML or JSON text, safely, for the CLI, the app and the Server.

A template is user input that the Server compiles: the text is bounded in size, YAML anchors and aliases are
refused (an alias "bomb" expands exponentially once turned into JSON), and only plain data comes back.
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


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise TemplateTextError(
                f"YAML aliases are not accepted in job templates (line {event.start_mark.line + 1}); write the "
                "value out"
            )
        return super().compose_node(parent, index)


_TOO_DEEP = f"the template is nested more than {JSON_MAX_DEPTH} levels deep"


def parse_template_text(text: str) -> dict[str, Any]:
    """The template document as a dict; TemplateTextError when it is too big, malformed or not a mapping."""
    size = len(text.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateTextError(f"the template is {size} bytes; at most {MAX_TEMPLATE_BYTES} are accepted")
    not_json: json.JSONDecodeError | None = None
    try:
        if text.lstrip().startswith("{"):
            try:
                return _checked(json.loads(text))
            except json.JSONDecodeError as exc:
                not_json = exc  # or a YAML flow mapping, `{specificationVersion: …}`, which begins the same way
        # YAML dates and the like become strings, as the same template written in JSON would hold
        data = json.loads(json.dumps(yaml.load(text, _NoAliasLoader), default=str))
    except yaml.YAMLError as exc:
        if not_json is not None:
            raise TemplateTextError(f"not valid JSON: {not_json}") from exc
        raise TemplateTextError(f"not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:  # YAML's and JSON's parsers recurse per level: `[[[[…` 1,000 deep ends here
        raise TemplateTextError(_TOO_DEEP) from exc
    return _checked(data)


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

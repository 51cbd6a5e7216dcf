"""`tablao submit FILE` tells an Open Job Description template from a JSON job: a job of type `openjd` holds a
template in its settings, and was taken for a template itself (its `name`, `type`, `settings` then refused); the
job's name it makes from the template's stays one line."""

from __future__ import annotations

import json
from pathlib import Path

from services.openjd_submit import is_template, job_name

TEMPLATE = {"specificationVersion": "jobtemplate-2023-09", "name": "t", "steps": []}


def test_a_template_is_told_from_a_json_job_that_holds_one() -> None:
    assert is_template(Path("t.json"), json.dumps(TEMPLATE))
    assert is_template(Path("t.yaml"), "name: t\n")
    job = {"name": "j", "type": "openjd", "settings": {"template": TEMPLATE}}
    assert not is_template(Path("job.json"), json.dumps(job))
    assert not is_template(Path("job.json"), json.dumps({"name": "j", "type": "exec", "settings": {}}))
    assert not is_template(Path("bad.json"), '{"specificationVersion": "jobtemplate-2023-09", oops')


def test_a_job_name_filled_from_a_parameter_stays_one_line() -> None:
    """The Server refuses a job name with a line break, which a STRING parameter's value may hold; the user of
    `tablao submit` never typed the name and could not change it."""
    template = {"name": "Shot {{Param.Note}}", "parameterDefinitions": [{"name": "Note", "type": "STRING"}]}
    assert job_name(template, {"Note": "a\nb\tc\u2028d\u202ee"}) == "Shot a b c d e"
    assert job_name(template, {"Note": "\n"}) == "Shot"

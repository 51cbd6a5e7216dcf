"""The input guard refuses numbers that Python's JSON parser would make Infinity, naming the field, and lets
every finite number through to the route unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from services.protocol import api_contract, input_guard
from services.protocol.input_guard import TOO_LARGE_MESSAGE, InputGuard, _suspect


async def echo(request: Request) -> Response:
    return Response(await request.body(), 200, media_type="application/json")


def make_app(name_field: Callable[[api_contract.Location], str] = api_contract.dotted) -> FastAPI:
    app = FastAPI()
    app.post("/echo")(echo)
    app.add_middleware(InputGuard, name_field=name_field)
    return app


async def post(raw: str, app: FastAPI | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app or make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/echo", content=raw, headers={"Content-Type": "application/json"})


def sample(memory: str) -> str:
    return f'{{"status": "awake", "utilisation": {{"cpu_percent": 5, "memory_used_mb": {memory}, "load_1m": 1}}}}'


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "1e+400", "2.5E0400", "1" + "0" * 400 + ".0"])
async def test_a_number_past_a_float_is_refused_naming_the_field(literal: str) -> None:
    r = await post(sample(literal))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "utilisation.memory_used_mb", "message": TOO_LARGE_MESSAGE}]
    r = await post(f'{{"settings": {{"parameters": {{"Scale": [1, {literal}]}}}}}}')
    assert r.json()["errors"][0]["field"] == "settings.parameters.Scale.1", r.text


async def test_the_manager_names_the_field_its_own_way() -> None:
    r = await post('{"updates": [{"seq": 1}, {"seq": 1e999}]}', make_app(api_contract.indexed))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "updates[1].seq", r.text


@pytest.mark.parametrize(
    "literal", ["1e3", "2.5e-10", "1e308", "-1.7976931348623157e308", "1e-400", "1" + "0" * 300, "0.5"]
)
async def test_finite_numbers_pass_unchanged(literal: str) -> None:
    raw = sample(literal)
    r = await post(raw)
    assert r.status_code == 200 and r.content == raw.encode(), r.text


async def test_look_alikes_in_strings_pass() -> None:
    raw = '{"name": "frame100 1e999 3E400", "hash": "' + "7" * 250 + '"}'
    r = await post(raw)
    assert r.status_code == 200 and r.content == raw.encode(), r.text


def test_ordinary_bodies_are_not_parsed() -> None:
    """The cheap look passes over what a farm sends nearly always, so those bodies are read once."""
    assert not _suspect(sample("1.5e-05").encode())
    assert not _suspect(b'{"log_lines": ["Rendering frame100 of 250, 12.5e3 samples"], "n": 123456789}')
    assert _suspect(sample("1e999").encode()) and _suspect(("1" * 210 + ".0").encode())


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"])
async def test_a_json_body_that_is_not_plain_utf8_is_refused_naming_the_body(encoding: str) -> None:
    """Python's parser guesses UTF-16 and UTF-32 from their NUL bytes or BOM: the API says UTF-8."""
    raw = '{"name": "shot 10", "priority": 50}'
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/echo", content=raw.encode(encoding), headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body", r.text
        assert r.json()["detail"].startswith("body: malformed JSON"), r.text  # as for any body JSON cannot read
        ok = await client.post("/echo", content=raw.encode(), headers={"Content-Type": "application/json"})
        assert ok.status_code == 200 and ok.content == raw.encode()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"software": {"blender": "4.2\xed\xa0\x80"}}',  # a lone surrogate, encoded: Python's parser took it
        b'{"software": {"\xed\xbf\xbf": "4.2"}}',
        b'{"name": "caf\xe9"}',  # Latin-1
        b'{"name": "\xf0\x9f\x98"}',  # an emoji cut short
        b'{"name": "\xc0\xaf"}',  # an overlong slash
    ],
)
async def test_bytes_no_utf8_text_has_are_refused_naming_the_body(raw: bytes) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/echo", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body", r.text


async def test_utf8_text_of_every_width_passes() -> None:
    raw = '{"name": "é ü 日本 😀"}'.encode()
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/echo", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.content == raw, r.text


async def test_a_look_alike_costs_one_parse_and_no_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "NaN" inside a log line had the body parsed and walked four times over on the event loop: a body of
    millions of values held it 5 s, and a worker's other requests with it. The walks are made only where the
    parse (or, for text, the bytes) says a refused value may be."""
    walks: list[object] = []
    real = input_guard._found

    def found(*args: Any) -> Any:
        walks.append(args)
        return real(*args)

    monkeypatch.setattr(input_guard, "_found", found)
    raw = '{"log_lines": ["Fra:1 NaN samples, Infinity, 1e999"], "values": [' + ", ".join(["1"] * 50_000) + "]}"
    r = await post(raw)
    assert r.status_code == 200 and r.content == raw.encode(), r.text
    assert walks == []


async def test_a_large_body_is_looked_into_as_a_small_one() -> None:
    """Past OFF_LOOP_BYTES, the look is made in a thread: the same refusal, naming the same field."""
    values = ", ".join(["1"] * (input_guard.OFF_LOOP_BYTES // 3))
    r = await post(f'{{"values": [{values}, NaN]}}')
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == f"values.{input_guard.OFF_LOOP_BYTES // 3}"
    r = await post(f'{{"values": [{values}], "name": "a\\u0000b"}}')
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text

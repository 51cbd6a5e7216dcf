"""Everyone with the registration secret may register workers: a Manager keeps at most TABLAO_MAX_WORKERS of
them (each is a record it holds in memory and reports to the Server); one more is a 409 saying how to make room."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.manager import app as manager_app
from services.manager.config import ManagerConfig

REGISTER = "/api/v1/worker/register"


def _body(name: str) -> dict[str, str]:
    return {"registration_secret": "s", "name": name, "platform": "linux"}


async def test_registering_past_the_limit_is_refused_until_a_worker_is_forgotten(tmp_path: Path) -> None:
    config = ManagerConfig(
        server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, registration_secret="s", max_workers=2
    )
    app = manager_app.create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            ids = [(await client.post(REGISTER, json=_body(f"w{i}"))).json()["worker_id"] for i in range(2)]
            r = await client.post(REGISTER, json=_body("w3"))
            assert r.status_code == 409, r.text
            assert "2 workers registered, its limit (TABLAO_MAX_WORKERS)" in r.json()["detail"]
            assert r.json()["errors"][0]["field"] == "quota"
            assert len(app.state.core.workers) == 2  # nothing stored of the refused one

            app.state.core.forget_workers([ids[0]])  # a wrangler forgot a worker that is gone
            r = await client.post(REGISTER, json=_body("w3"))
            assert r.status_code == 200, r.text


@pytest.mark.parametrize(("raw", "wanted"), [("none", None), ("NONE", None), ("50", 50)])
def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, wanted: int | None) -> None:
    monkeypatch.setenv("TABLAO_MAX_WORKERS", raw)
    assert ManagerConfig.from_env("http://s", "t").max_workers == wanted


@pytest.mark.parametrize("raw", ["0", "-3", "many"])
def test_a_bad_limit_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("TABLAO_MAX_WORKERS", raw)
    with pytest.raises(ValueError, match="TABLAO_MAX_WORKERS"):
        ManagerConfig.from_env("http://s", "t")

"""The admin's routes over real HTTP, on SQLite and PostgreSQL: a role change or a disabled user takes effect on
the user's tokens at once, an admin cannot lock themselves out, and a removed Manager's tasks are queued again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_link_server import claim, kind, push, submit
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


def new_user(admin: httpx.Client, role: str = "artist") -> tuple[dict[str, Any], str, str]:
    """(user, token, password) of a fresh user."""
    name, password = f"u{uuid.uuid4().hex[:8]}", "a-long-password"
    r = admin.post("/users", json={"name": name, "role": role, "password": password})
    assert r.status_code == 201, r.text
    token = admin.post("/tokens", json={"user": name}).json()["token"]
    return r.json(), token, password


def me(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}{API}/me", headers=server.headers(token), timeout=30)


def login(server: ServerProcess, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}{API}/auth/login", json={"username": name, "password": password}, timeout=30)


def test_role_changes_and_disabling_reach_the_users_tokens_at_once(admin: httpx.Client, server: ServerProcess) -> None:
    user, token, password = new_user(admin)
    assert me(server, token).json()["role"] == "artist"
    assert httpx.get(f"{server.url}{API}/users", headers=server.headers(token)).status_code == 403
    r = admin.patch(f"/users/{user['id']}", json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert me(server, token).json()["role"] == "admin"  # not after the token cache's 10 s
    assert httpx.get(f"{server.url}{API}/users", headers=server.headers(token)).status_code == 200

    r = admin.patch(f"/users/{user['id']}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert me(server, token).status_code == 401
    refused = login(server, user["name"], password)  # the right password: told why, naming the user's name
    assert refused.status_code == 403 and [e["field"] for e in refused.json()["errors"]] == ["name"], refused.text
    assert login(server, user["name"], "not-the-password").status_code == 401  # else: nothing learnt
    listed = next(u for u in admin.get("/users").json() if u["id"] == user["id"])
    assert listed["disabled"] is True

    r = admin.patch(f"/users/{user['id']}", json={"disabled": False, "role": "wrangler", "password": "another-one!"})
    assert r.status_code == 200 and r.json() == {**listed, "disabled": False, "role": "wrangler"}
    assert me(server, token).json()["role"] == "wrangler"
    assert login(server, user["name"], password).status_code == 401
    assert login(server, user["name"], "another-one!").status_code == 200


def test_an_admin_cannot_lock_themselves_out(admin: httpx.Client, server: ServerProcess) -> None:
    me_id = next(u["id"] for u in admin.get("/users").json() if u["name"] == "admin")
    for body, field in (({"disabled": True}, "disabled"), ({"role": "artist"}, "role")):
        r = admin.patch(f"/users/{me_id}", json=body)
        assert r.status_code == 409, r.text
        assert r.json()["errors"][0]["field"] == field
    other, other_token, _ = new_user(admin, role="admin")
    # another admin may change this one, and this one may then still change the other back
    with httpx.Client(base_url=server.url + API, headers=server.headers(other_token), timeout=30) as second:
        assert second.patch(f"/users/{me_id}", json={"role": "wrangler"}).status_code == 200
        assert admin.get("/users").status_code == 403
        assert second.patch(f"/users/{me_id}", json={"role": "admin"}).status_code == 200
    assert admin.patch(f"/users/{other['id']}", json={"disabled": True}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "god"}, "role"),
        ({"password": "short"}, "password"),
        ({"disabled": "maybe"}, "disabled"),
        ({"name": "renamed"}, "name"),
    ],
)
def test_bad_user_changes_are_refused_naming_the_field(admin: httpx.Client, body: dict[str, Any], field: str) -> None:
    user, _, _ = new_user(admin)
    r = admin.patch(f"/users/{user['id']}", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}
    assert next(u for u in admin.get("/users").json() if u["id"] == user["id"]) == user


@pytest.mark.parametrize("name", ["\u202eevil", "two\nlines", "para\u2029graph", "line\u2028sep", "esc\u001b[2J"])
def test_a_token_name_is_one_line_without_controls(admin: httpx.Client, name: str) -> None:
    """From a hostile-input audit: the admin's token list showed any text as a token's name (an override
    reversing the row, a line break forging another)."""
    user, _, _ = new_user(admin)
    before = [t["id"] for t in admin.get("/tokens").json()]
    r = admin.post("/tokens", json={"user": user["name"], "name": name})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["name"], r.text
    assert [t["id"] for t in admin.get("/tokens").json()] == before
    r = admin.post("/tokens", json={"user": user["name"], "name": "  laptop  "})
    assert r.status_code == 201 and r.json()["name"] == "laptop", r.text
    assert admin.post("/tokens", json={"user": user["name"], "name": " "}).json()["name"] == ""


def test_missing_users_and_managers(admin: httpx.Client) -> None:
    assert admin.patch("/users/987654", json={"role": "artist"}).status_code == 404
    r = admin.patch(f"/users/{2**70}", json={"role": "artist"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "user_id"
    assert admin.delete("/managers/987654").status_code == 404
    assert admin.delete("/managers/-1").status_code == 422


def test_a_removed_manager_loses_its_token_and_its_tasks_are_queued_again(
    admin: httpx.Client, server: ServerProcess
) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    token = add_manager(server, name)
    manager_id = next(m["id"] for m in admin.get("/managers").json() if m["name"] == name)
    t = kind()
    job = submit(admin, t, frames="1-3")
    with httpx.Client(base_url=server.url + API + "/manager", headers=server.headers(token), timeout=30) as link:
        link.seq = 0  # type: ignore[attr-defined]
        got = claim(link, [t], capacity=2)
        assert len(got) == 2
        push(link, [{"task_id": got[0]["id"], "attempt": got[0]["attempt"], "status": "active", "worker_id": "w1"}])
        assert admin.delete(f"/managers/{manager_id}").status_code == 204
        assert link.post("/claim", json={"capacity": 1, "task_types": [t]}).status_code == 401
    assert all(m["id"] != manager_id for m in admin.get("/managers").json())
    tasks = admin.get(f"/jobs/{job['id']}/tasks").json()["items"]
    assert [x["status"] for x in tasks] == ["queued"] * 3
    held = [x for x in tasks if x["id"] in {g["id"] for g in got}]
    assert all(f"{name} was removed" in x["activity"] for x in held)
    assert all(x["failure_count"] == 0 for x in held), "a removal is no failure of the task"
    assert admin.delete(f"/managers/{manager_id}").status_code == 404


def test_user_names_differ_by_more_than_case(admin: httpx.Client) -> None:
    name = f"ana{uuid.uuid4().hex[:8]}"
    assert admin.post("/users", json={"name": name, "role": "artist"}).status_code == 201
    for other in (name, name.upper(), name.capitalize()):
        r = admin.post("/users", json={"name": other, "role": "wrangler"})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name", r.text
        assert repr(name) in r.json()["detail"]
    assert [u["name"] for u in admin.get("/users").json()].count(name) == 1

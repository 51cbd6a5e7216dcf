"""A typed async client of the Server's admin routes: users, API tokens, Managers and webhooks.

It rides on a `ServerClient` (same addresses, token and error handling: failures are `ApiError`s)."""

from __future__ import annotations

from typing import Any

from services.protocol.admin import Webhook, WebhookCreated, WebhookEvent, WebhookQueued
from services.protocol.farm import ApiToken, Manager, ManagerCreated, TokenCreated, User
from services.protocol.server_client import ServerClient
from services.protocol.states import Role


class AdminClient:
    def __init__(self, client: ServerClient) -> None:
        self.client = client

    # ---- users ----
    async def users(self) -> list[User]:
        return [User.model_validate(x) for x in await self.client.call("GET", "/users")]

    async def add_user(self, name: str, role: Role, password: str | None = None) -> User:
        body = {"name": name, "role": role, "password": password or None}
        return User.model_validate(await self.client.call("POST", "/users", json=body))

    async def change_user(
        self, user_id: int, *, role: Role | None = None, disabled: bool | None = None, password: str | None = None
    ) -> User:
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if disabled is not None:
            body["disabled"] = disabled
        if password is not None:
            body["password"] = password
        return User.model_validate(await self.client.call("PATCH", f"/users/{user_id}", json=body))

    # ---- tokens ----
    async def tokens(self) -> list[ApiToken]:
        return [ApiToken.model_validate(x) for x in await self.client.call("GET", "/tokens")]

    async def create_token(self, user: str, name: str = "", expires_days: float | None = None) -> TokenCreated:
        body = {"user": user, "name": name, "expires_days": expires_days}
        return TokenCreated.model_validate(await self.client.call("POST", "/tokens", json=body))

    async def revoke_token(self, token_id: int) -> None:
        await self.client.call("DELETE", f"/tokens/{token_id}")

    # ---- Managers ----
    async def managers(self) -> list[Manager]:
        return [Manager.model_validate(x) for x in await self.client.call("GET", "/managers")]

    async def create_manager(self, name: str) -> ManagerCreated:
        return ManagerCreated.model_validate(await self.client.call("POST", "/managers", json={"name": name}))

    async def remove_manager(self, manager_id: int) -> None:
        await self.client.call("DELETE", f"/managers/{manager_id}")

    # ---- webhooks ----
    async def webhooks(self) -> list[Webhook]:
        return [Webhook.model_validate(x) for x in await self.client.call("GET", "/webhooks")]

    async def create_webhook(
        self, name: str, url: str, events: list[WebhookEvent], enabled: bool = True
    ) -> WebhookCreated:
        body = {"name": name, "url": url, "events": [e.value for e in events], "enabled": enabled}
        return WebhookCreated.model_validate(await self.client.call("POST", "/webhooks", json=body))

    async def change_webhook(
        self,
        webhook_id: int,
        *,
        url: str | None = None,
        events: list[WebhookEvent] | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        body: dict[str, Any] = {}
        if url is not None:
            body["url"] = url
        if events is not None:
            body["events"] = [e.value for e in events]
        if enabled is not None:
            body["enabled"] = enabled
        return Webhook.model_validate(await self.client.call("PATCH", f"/webhooks/{webhook_id}", json=body))

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.client.call("DELETE", f"/webhooks/{webhook_id}")

    async def test_webhook(self, webhook_id: int) -> WebhookQueued:
        return WebhookQueued.model_validate(await self.client.call("POST", f"/webhooks/{webhook_id}/test"))

"""The webhook deliverer's pure parts: when a failed call is tried again or given up, how calls are signed, and
which URLs a webhook may have."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.protocol.admin import WebhookCreate
from services.server.store.webhooks import Call
from services.server.webhook_settings import WebhookSettings
from services.server.webhooks import backoff_seconds, retry_at, signature

T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def call(attempts: int, created: datetime = T0) -> Call:
    return Call(1, 1, "k", "job-completed", "http://x/", "s", {}, attempts, created)


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    s = WebhookSettings(backoff_min=2.0, backoff_max=60.0)
    for attempts, base in ((1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (30, 60)):
        waits = [backoff_seconds(attempts, s) for _ in range(200)]
        assert all(0.8 * base <= w <= 1.2 * base for w in waits), (attempts, min(waits), max(waits))
        assert max(waits) - min(waits) > 0.1 * base, "jitter spreads calls that failed together"


def test_a_call_is_given_up_after_max_attempts_or_max_age() -> None:
    s = WebhookSettings(backoff_min=1.0, backoff_max=10.0, max_attempts=3, max_age_seconds=100)
    first = retry_at(call(0), s, T0)
    assert first is not None and timedelta(seconds=0.8) <= first - T0 <= timedelta(seconds=1.2)
    assert retry_at(call(1), s, T0) is not None
    assert retry_at(call(2), s, T0) is None  # the third attempt failed: given up
    old = T0 - timedelta(seconds=99.5)
    assert retry_at(call(0, created=old), s, T0) is None  # the next try would fall past a 100 s age


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_WEBHOOK_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("TABLAO_WEBHOOK_BACKOFF_MAX", "0.5")
    s = WebhookSettings.from_env()
    assert s.max_attempts == 5 and isinstance(s.max_attempts, int) and s.backoff_max == 0.5
    assert s.timeout == WebhookSettings().timeout


def test_signature_is_the_hmac_of_the_body() -> None:
    body = b'{"id":"k"}'
    assert signature("secret", body) == "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature("other", body) != signature("secret", body)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.slack.com/services/T0/B0/xyz", "http://127.0.0.1:8065/hooks/abc?x=1", "http://[::1]:9/h"],
)
def test_good_urls(url: str) -> None:
    assert WebhookCreate(name="chat", url=url).url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://a@b.example/", "user name or password"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com/\n", "control characters"),
        ("example.com/hook", "http:// or https://"),
        ("", "at least 1"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        WebhookCreate(name="chat", url=url)
    assert reason in str(refused.value)

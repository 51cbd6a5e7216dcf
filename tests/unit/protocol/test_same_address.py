"""One service however its URL is written: the key a worker's identity and the tray's secret are kept under."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.protocol.same_address import address_key, on_this_machine, same_address
from services.worker import credentials


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://mgr.lan:8471", "http://mgr.lan:8471/"),
        ("http://Mgr.LAN:8471", "HTTP://mgr.lan:8471"),
        ("http://mgr.lan:80/", "http://mgr.lan"),
        ("https://mgr.lan:443", "https://mgr.lan/"),
        ("http://localhost:8471", "http://127.0.0.1:8471"),
        ("http://[::1]:8471", "http://127.0.0.1:8471/"),
        ("http://mgr.lan.:8471", "http://mgr.lan:8471"),
        ("https://proxy.lan/farm/manager/", "https://PROXY.lan:443/farm/manager"),
    ],
)
def test_one_service_written_two_ways(a: str, b: str) -> None:
    assert same_address(a, b) and address_key(a) == address_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://mgr.lan:8471", "https://mgr.lan:8471"),
        ("http://mgr.lan:8471", "http://mgr.lan:8472"),
        ("http://mgr.lan", "http://mgr2.lan"),
        ("http://127.0.0.1:8471", "http://10.0.0.5:8471"),
        ("https://proxy.lan/farm/a", "https://proxy.lan/farm/b"),
        ("https://proxy.lan/Farm", "https://proxy.lan/farm"),  # a path's case is the server's to read
    ],
)
def test_two_services(a: str, b: str) -> None:
    assert not same_address(a, b)


def test_a_url_that_cannot_be_read_is_kept_as_typed() -> None:
    assert address_key("http://mgr.lan:99999/") == "http://mgr.lan:99999"
    assert address_key("not a url/") == "not a url"


def test_a_worker_keeps_its_identity_when_its_manager_is_named_another_way(tmp_path: Path) -> None:
    """It registered anew, its old self left offline at the Manager with its sleep schedule and tags."""
    creds = credentials.Credentials("http://127.0.0.1:8471", "w-1", "s3cret-value")
    credentials.save(tmp_path, creds)
    assert credentials.load(tmp_path, "http://localhost:8471/") == creds
    assert credentials.load(tmp_path, "http://mgr.lan:8471") is None  # another Manager: register there


def test_a_worker_of_a_local_manager_started_on_another_port_tries_its_identity_there(tmp_path: Path) -> None:
    """From a newcomer's audit: `make run PORT=8480` registered the local farm's workers anew (the old ones left
    offline, two `local-1`s); the Manager's sign-on answer tells whether it knows them."""
    creds = credentials.Credentials("http://127.0.0.1:8471", "w-1", "s3cret-value")
    credentials.save(tmp_path, creds)
    assert credentials.load(tmp_path, "http://localhost:8481") == creds
    assert credentials.load(tmp_path, "https://127.0.0.1:8481") is None  # another scheme: another service
    assert not on_this_machine("http://127.0.0.1:8471", "http://10.0.0.5:8471")

"""Ports picked for local services stay out of the range the kernel gives outgoing connections."""

from __future__ import annotations

import random
import socket

import pytest

from services import local_ports


def test_a_pair_of_ports_is_free_and_below_the_ephemeral_range() -> None:
    for _ in range(20):
        port = local_ports.free_ports(2)
        assert port >= local_ports._LOWEST and port + 1 <= local_ports._highest()
        for p in (port, port + 1):
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))  # raises if it was not free


def test_a_port_in_use_is_not_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = int(taken.getsockname()[1])
        real_randint = random.randint
        calls: list[int] = []

        def first_overlapping(a: int, b: int) -> int:
            calls.append(a)
            return busy - 1 if len(calls) == 1 else real_randint(a, b)  # (busy-1, busy) overlaps the taken port

        monkeypatch.setattr(random, "randint", first_overlapping)
        port = local_ports.free_ports(2)
        assert len(calls) >= 2 and busy not in (port, port + 1)

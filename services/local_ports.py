"""Free TCP ports on 127.0.0.1 for services started locally by tests and tools.

Ports are picked below the kernel's ephemeral range (Linux 32768-60999, macOS 49152-65535): a port the kernel
handed out for a moment and took back can be given to any outgoing connection before the service that was told
to listen on it gets there ("address already in use"); ports below the range are never handed out that way.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _highest() -> int:
    """The last port below the ephemeral range (32767 where it cannot be read)."""
    try:
        first = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32767
    return max(_LOWEST + 1000, min(first - 1, 32767))


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1, host: str = "127.0.0.1") -> int:
    """A port P such that P .. P + count - 1 are all free now, below the ephemeral range."""
    highest = _highest() - (count - 1)
    for _ in range(200):
        port = random.randint(_LOWEST, highest)
        if all(_bindable(port + i, host) for i in range(count)):
            return port
    raise RuntimeError(f"no {count} consecutive free ports between {_LOWEST} and {highest + count - 1}")

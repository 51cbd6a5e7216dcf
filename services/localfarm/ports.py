"""Is a port free to listen on, and if not, who holds it (a clear message instead of "address already in use")."""

from __future__ import annotations

import contextlib
import socket

import psutil

# the Server's port (the Manager takes the next), as `tablao all-in-one` and `make run` are told it
CHOOSE_PORT = "--port N (make run PORT=N)"


def bindable(host: str, port: int) -> bool:
    host = host.strip("[]")  # `--host [::1]`
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        if hasattr(socket, "SO_REUSEADDR"):  # as uvicorn binds: a port in TIME_WAIT is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int) -> str | None:
    """'pid 123 (python3 -m http.server 8470)' for the process listening on port, where the OS tells us."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    cmd = " ".join(a for a in psutil.Process(conn.pid).cmdline() if a.strip())  # redis pads with ""
                except psutil.Error:
                    cmd = ""
                if len(cmd) > 200:  # cut between words, and say so: a number cut short names another port
                    cmd = cmd[:200].rsplit(" ", 1)[0] + " …"
                return f"pid {conn.pid}" + (f" ({cmd})" if cmd else "")
    return None


def busy_message(host: str, port: int, role: str, choose: str = CHOOSE_PORT) -> str | None:
    """None if port is free on host; else one line naming the port, the service it was for, and its holder."""
    if bindable(host, port):
        return None
    who = holder(port)
    held = f"held by {who}" if who else "held by another program (one this user cannot see)"
    return f"port {port} on {host}, needed for the {role}, is {held}; stop it or choose another port: {choose}"

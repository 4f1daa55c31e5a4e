"""Who holds a TCP port: a bind probe (is it free?) and psutil (which process, if we may see it)."""

from __future__ import annotations

import contextlib
import socket

import psutil

from console.core.records import View


class PortHolder(View, frozen=True):
    pid: int | None  # None when the kernel shows a listener but not its process (another user's)
    program: str
    cmdline: list[str]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can a new listener bind `port`? SO_REUSEADDR as servers use it, so TIME_WAIT does not count."""
    for family, address in ((socket.AF_INET, host), (socket.AF_INET, "0.0.0.0")):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def port_holder(port: int) -> PortHolder | None:
    """The process listening on `port`, as far as psutil can see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid is None:
            return PortHolder(None, "unknown (not visible to this user)", [])
        try:
            proc = psutil.Process(conn.pid)
            return PortHolder(conn.pid, proc.name(), proc.cmdline())
        except psutil.Error:
            return PortHolder(conn.pid, "unknown", [])
    return None


ADDRESS_IN_USE_MARKERS = ("address already in use", "eaddrinuse", "errno 98", "port is already allocated")


def mentions_address_in_use(output: str) -> bool:
    text = output.lower()
    return any(marker in text for marker in ADDRESS_IN_USE_MARKERS)


def can_connect(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False

"""Ports checked before anything starts: a taken one ends in one line naming it and what
wanted it, not a hang (moto's server thread waits forever for a bind that failed) or
uvicorn's traceback."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from app.config import Settings


@dataclass(frozen=True)
class Wanted:
    host: str
    port: int
    by: str  # who wants it, with the option that sets it


def embedded_s3_host(settings: Settings) -> str:
    """Where the embedded S3 listens (``mockctl.embedded_s3``): loopback unless Rails itself
    listens on loopback only (then on that address). Here, so a command that only reaches it
    (``rake``) need not import moto."""
    return settings.host if settings.binds_only_loopback() else "127.0.0.1"


_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel calls free, never one this process was given before: asked twice in a
    row on a busy machine, the kernel can hand out the same ephemeral port again."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(wanted: list[Wanted]) -> None:
    """RuntimeError naming the first port that is taken, or wanted twice."""
    for i, want in enumerate(wanted):
        other = next((o for o in wanted[:i] if o.port == want.port), None)
        if other is not None:
            raise RuntimeError(f"port {want.port} is wanted by both {other.by} and {want.by}")
        if port_in_use(want.host, want.port):
            raise RuntimeError(
                f"port {want.port} on {want.host} is in use: {want.by} wants it (is another mockcoord running?)"
            )

"""moto's S3 server, started in-process on loopback when no endpoint is configured."""

from __future__ import annotations

import logging
import socket

from moto.server import ThreadedMotoServer

from app.config import Settings
from mockctl.ports import Wanted, check_ports

WANTED_BY = "the embedded S3 server (--s3-port)"


def embedded_s3_host(settings: Settings) -> str:
    """Loopback unless Rails itself listens on loopback only (then on that address)."""
    return settings.host if settings.binds_only_loopback() else "127.0.0.1"


def s3_port(settings: Settings) -> list[Wanted]:
    """The embedded S3's port, when it is used and not left to the system."""
    return (
        [Wanted(embedded_s3_host(settings), settings.s3_port, WANTED_BY)]
        if settings.embedded_s3 and settings.s3_port
        else []
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedS3:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedS3:
        check_ports([Wanted(self.host, self.port, WANTED_BY)])  # else moto's thread waits forever
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

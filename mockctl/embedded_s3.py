"""moto's S3 server, started in-process on loopback when no endpoint is configured.

Behind ``S3Gate``: as on S3, only requests signed with the store's key pair (the
``object_store.connection`` credentials Rails and Workhorse use) reach the bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from threading import Thread
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from app.config import ObjectStoreConnection, Settings
from mockctl.ports import Wanted, check_ports, embedded_s3_host, free_port
from mockctl.s3_gate import S3Gate

WANTED_BY = "the embedded S3 server (--s3-port)"


def s3_port(settings: Settings) -> list[Wanted]:
    """The embedded S3's port, when it is used and not left to the system."""
    return (
        [Wanted(embedded_s3_host(settings), settings.s3_port, WANTED_BY)]
        if settings.embedded_s3 and settings.s3_port
        else []
    )


class EmbeddedS3:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        connection: ObjectStoreConnection | None = None,
        wrap: Callable[[Any], Any] | None = None,
    ) -> None:
        """``wrap``: WSGI middleware put around moto, behind the signature check."""
        self.host = host
        self.wrap = wrap
        self.port = port or free_port(host)
        connection = connection or ObjectStoreConnection()
        self.credentials = {connection.aws_access_key_id: connection.aws_secret_access_key}
        self._server: BaseWSGIServer | None = None
        self._thread: Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedS3:
        check_ports([Wanted(self.host, self.port, WANTED_BY)])  # else moto's thread waits forever
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_app: Any = DomainDispatcherApplication(create_backend_app)
        app = S3Gate(self.wrap(moto_app) if self.wrap else moto_app, self.credentials)
        # Bound here, so the store answers as soon as start returns.
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = Thread(target=self._server.serve_forever, name="embedded-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()

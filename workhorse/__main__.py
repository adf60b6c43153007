"""``python -m workhorse``: serve plain Workhorse with uvicorn (uvloop + httptools when installed)."""

import socket

import uvicorn

from workhorse import heap
from workhorse.app import create_app
from workhorse.config import WorkhorseSettings
from workhorse.instrumentation import Instrument


def run(settings: WorkhorseSettings, instrument: Instrument | None = None) -> None:
    """Serve until interrupted; Workhorse writes its own JSON access log, so uvicorn's is off."""
    heap.limit_arenas()
    config = uvicorn.Config(
        create_app(settings, instrument),
        host=settings.listen_host,
        port=settings.listen_port,
        access_log=False,
        # Rails' Date is relayed; uvicorn adding its own would send two.
        date_header=False,
        server_header=False,
        lifespan="on",
        log_level="warning",
    )
    inherited = [socket.socket(fileno=settings.listen_fd)] if settings.listen_fd is not None else None
    uvicorn.Server(config).run(inherited)


if __name__ == "__main__":
    run(WorkhorseSettings())

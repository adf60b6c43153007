"""``python -m workhorse``: serve plain Workhorse with uvicorn (uvloop + httptools when installed)."""

import socket
from typing import Any

import uvicorn

from workhorse import heap
from workhorse.app import create_app
from workhorse.config import WorkhorseSettings
from workhorse.instrumentation import Instrument


def uvicorn_options(settings: WorkhorseSettings) -> dict[str, Any]:
    """Workhorse writes its own JSON access log, so uvicorn's is off."""
    return {
        "host": settings.listen_host,
        "port": settings.listen_port,
        "access_log": False,
        "date_header": False,  # Rails' Date is relayed; uvicorn adding its own would send two.
        "server_header": False,
        "lifespan": "on",
        "log_level": "warning",
    }


def run(settings: WorkhorseSettings, instrument: Instrument | None = None) -> None:
    """Serve until interrupted."""
    heap.limit_arenas()
    config = uvicorn.Config(create_app(settings, instrument), **uvicorn_options(settings))
    inherited = [socket.socket(fileno=settings.listen_fd)] if settings.listen_fd is not None else None
    uvicorn.Server(config).run(inherited)


if __name__ == "__main__":
    run(WorkhorseSettings())

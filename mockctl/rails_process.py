"""Rails processes beyond the first on one port (``--rails-processes``; Puma's workers).

``python -m mockctl.rails_process`` is one more Rails process for ``mockcoord serve``: it serves
on the listening socket serve bound (its descriptor in ``MOCKCOORD_RAILS_PROCESS_FD``), with
serve's settings handed over whole, flags included (``MOCKCOORD_RAILS_PROCESS_SETTINGS``), and
says ``ready`` on its stdout once it accepts. ``create_app`` is the factory uvicorn's own workers
call for ``mockcoord rails --processes``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import uvicorn
from fastapi import FastAPI

from app.config import Settings
from mockctl.children import Process, exit_reason, spawn
from mockctl.rails import create_app as create_rails
from mockctl.tokens import mask_access_log

SETTINGS_VAR = "MOCKCOORD_RAILS_PROCESS_SETTINGS"
FD_VAR = "MOCKCOORD_RAILS_PROCESS_FD"
READY = b"ready\n"


def handed_over(settings: Settings) -> dict[str, str]:
    """The variables a further Rails process reads its settings from."""
    return {SETTINGS_VAR: settings.model_dump_json()}


def _settings() -> Settings:
    return Settings.model_validate_json(os.environ[SETTINGS_VAR])


def create_app() -> FastAPI:
    mask_access_log()  # here: a uvicorn worker sets its logging up before it calls the factory
    return create_rails(_settings())


async def start(settings: Settings, listener: socket.socket) -> Process:
    env = {**handed_over(settings), FD_VAR: str(listener.fileno())}
    return await spawn(__name__, env, listener, stdout=asyncio.subprocess.PIPE)


async def wait_ready(proc: Process, within: float = 60) -> None:
    """Until the process says it accepts; RuntimeError naming how it ended otherwise."""
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), within)
    except TimeoutError:
        raise RuntimeError(f"Rails (pid {proc.pid}) was not ready within {within:.0f}s") from None
    if line != READY:
        raise RuntimeError(f"Rails (pid {proc.pid}) {exit_reason(await proc.wait())}")


async def _serve(server: uvicorn.Server, listener: socket.socket) -> None:
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():  # it could not start: uvicorn said why on stderr, serve tells how it ended
            return
        await asyncio.sleep(0.02)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the pipe to serve says nothing more
    await task


def main() -> None:
    config = uvicorn.Config(create_app(), log_level=_settings().log_level, lifespan="on", server_header=False)
    listener = socket.socket(fileno=int(os.environ[FD_VAR]))
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(_serve(uvicorn.Server(config), listener))


if __name__ == "__main__":
    main()

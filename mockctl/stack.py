"""The whole coordinator running on loopback: Rails in this process, Workhorse in its own.

``mockcoord serve`` keeps it up until interrupted; ``mockcoord flows reproduce`` starts
one for a single scenario when no coordinator URL is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn

from app.config import Settings
from app.state import AppState
from app.workhorse_api import ensure_secret
from mockctl.embedded_s3 import s3_port
from mockctl.front_door import front_door, start_workhorse, wait_ready
from mockctl.instrument import instrument
from mockctl.ports import Wanted, check_ports
from mockctl.rails import create_app
from mockctl.sidekiq import JOB_LOGGER, log_jobs_to, scheduler_for
from mockctl.supervisor import WorkhorseSupervisor, say_on_stderr
from mockctl.tokens import mask_access_log


@dataclass
class RunningStack:
    state: AppState
    url: str
    rails: asyncio.Task[None]
    workhorse: WorkhorseSupervisor

    async def wait(self) -> None:
        """Until Rails stops (a signal, or the server exiting); RuntimeError when Workhorse
        kept dying and was given up."""
        assert self.workhorse.task is not None
        done, _ = await asyncio.wait({self.rails, self.workhorse.task}, return_when=asyncio.FIRST_COMPLETED)
        if self.workhorse.task in done:
            self.workhorse.task.result()
        await self.rails


async def _start_rails(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], AppState]:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.rails_port,
            log_level=settings.log_level,
            lifespan="on",
            server_header=False,
        )
    )
    mask_access_log()
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError(f"Rails could not start on 127.0.0.1:{settings.rails_port}")
        await asyncio.sleep(0.02)
    return server, task, app.state.mockcoord


def stack_ports(settings: Settings) -> list[Wanted]:
    """Front door, Rails (on loopback: only Workhorse talks to it), the embedded S3 when used."""
    return [front_door(settings), Wanted("127.0.0.1", settings.rails_port, "Rails (--rails-port)"), *s3_port(settings)]


@asynccontextmanager
async def running_stack(
    settings: Settings, say: Callable[[str], None] = say_on_stderr, cron: bool = False
) -> AsyncIterator[RunningStack]:
    """Raises RuntimeError with a readable reason when a part cannot start. Workhorse is
    supervised: ``say`` tells of its exits and restarts, Rails' ``/-/readiness`` of its state.
    ``cron``: run the cron schedule in the Rails process (``mockcoord serve``), its runs logged
    to ``<data>/log/sidekiq.log``; off for every other user (tests want runs when they ask)."""
    check_ports(stack_ports(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret(settings.secret_file)
    url = f"http://{settings.host}:{settings.workhorse_port}"
    workhorse = WorkhorseSupervisor(
        lambda: start_workhorse(settings), lambda proc: wait_ready(proc, url.replace("0.0.0.0", "127.0.0.1")), say
    )
    await workhorse.launch()
    try:
        server, task, state = await _start_rails(settings)
        try:
            instrument(state).readiness["workhorse_check"] = workhorse.check
            await workhorse.supervise()
            scheduler = None
            if cron:
                log_handler = log_jobs_to(settings.data_dir.resolve() / "log" / "sidekiq.log")
                scheduler = scheduler_for(state)
                await scheduler.start()
            try:
                yield RunningStack(state, url, task, workhorse)
            finally:
                if scheduler is not None:
                    await scheduler.stop()
                    logging.getLogger(JOB_LOGGER).removeHandler(log_handler)
                    log_handler.close()
        finally:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await workhorse.stop()

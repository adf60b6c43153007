"""The whole coordinator running on loopback: Rails in this process (and, with
``--rails-processes``, in further ones on the same port), Workhorse in its own processes.

``mockcoord serve`` keeps it up until interrupted; ``mockcoord flows reproduce`` starts
one for a single scenario when no coordinator URL is given.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn

from app.config import Settings
from app.state import AppState
from app.workhorse_api import ensure_secret
from mockctl import rails_process, shared_faults
from mockctl.children import listen
from mockctl.embedded_s3 import s3_port
from mockctl.front_door import front_door, start_workhorse, wait_ready, workhorse_faults_file
from mockctl.instrument import instrument
from mockctl.ports import Wanted, check_ports
from mockctl.rails import create_app
from mockctl.sidekiq import JOB_LOGGER, log_jobs_to, scheduler_for
from mockctl.supervisor import Supervisor, say_on_stderr
from mockctl.tokens import mask_access_log


@dataclass
class RunningStack:
    state: AppState
    url: str
    rails: asyncio.Task[None]
    workhorses: list[Supervisor]
    more_rails: list[Supervisor]  # the Rails processes beyond this one

    async def wait(self) -> None:
        """Until Rails stops (a signal, or the server exiting); RuntimeError when a child
        process kept dying and was given up."""
        tasks = [s.task for s in (*self.workhorses, *self.more_rails) if s.task is not None]
        done, _ = await asyncio.wait({self.rails, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {self.rails}:
            task.result()
        await self.rails


async def _start_rails(
    settings: Settings, listener: socket.socket
) -> tuple[uvicorn.Server, asyncio.Task[None], AppState]:
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level=settings.log_level, lifespan="on", server_header=False))
    mask_access_log()
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():
            raise RuntimeError(f"Rails could not start on 127.0.0.1:{settings.rails_port}")
        await asyncio.sleep(0.02)
    return server, task, app.state.mockcoord


def stack_ports(settings: Settings) -> list[Wanted]:
    """Front door, Rails (on loopback: only Workhorse talks to it), the embedded S3 when used."""
    return [front_door(settings), Wanted("127.0.0.1", settings.rails_port, "Rails (--rails-port)"), *s3_port(settings)]


def _workhorse_check(workhorses: list[Supervisor]) -> Callable[[], dict[str, str]]:
    """One ``/-/readiness`` entry for the front door: failed while any Workhorse process is down."""

    def check() -> dict[str, str]:
        return next((c for c in (w.check() for w in workhorses) if c["status"] != "ok"), {"status": "ok"})

    return check


def _forget_fault_rules(settings: Settings) -> None:
    """A start begins with no fault rules, as a process's memory does."""
    for path in (shared_faults.rails_faults_file(settings), workhorse_faults_file(settings)):
        if path is not None:
            shared_faults.forget(path)


@asynccontextmanager
async def running_stack(
    settings: Settings, say: Callable[[str], None] = say_on_stderr, cron: bool = False
) -> AsyncIterator[RunningStack]:
    """Raises RuntimeError with a readable reason when a part cannot start. The child processes
    are supervised: ``say`` tells of their exits and restarts, Rails' ``/-/readiness`` of
    Workhorse's state. ``cron``: run the cron schedule in this Rails process (``mockcoord
    serve``), its runs logged to ``<data>/log/sidekiq.log``; off for every other user (tests want
    runs when they ask)."""
    check_ports(stack_ports(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret(settings.secret_file)
    _forget_fault_rules(settings)
    url = f"http://{settings.host}:{settings.workhorse_port}"
    ready_url = url.replace("0.0.0.0", "127.0.0.1")
    with listen(settings.host, settings.workhorse_port) as front, listen("127.0.0.1", settings.rails_port) as back:
        workhorses = [
            Supervisor(lambda: start_workhorse(settings, front), lambda proc: wait_ready(proc, ready_url), say)
            for _ in range(settings.workhorse_processes)
        ]
        more_rails = [
            Supervisor(
                lambda: rails_process.start(settings, back), rails_process.wait_ready, say, "Rails", "serve's output"
            )
            for _ in range(settings.rails_processes - 1)
        ]
        try:
            for workhorse in workhorses:
                await workhorse.launch()
            server, task, state = await _start_rails(settings, back)
            try:
                instrument(state).readiness["workhorse_check"] = _workhorse_check(workhorses)
                for rails in more_rails:  # after this one: it made the tables and started the store
                    await rails.launch()
                await asyncio.gather(*(child.supervise() for child in (*workhorses, *more_rails)))
                scheduler = None
                if cron:
                    log_handler = log_jobs_to(settings.data_dir.resolve() / "log" / "sidekiq.log")
                    scheduler = scheduler_for(state)
                    await scheduler.start()
                try:
                    yield RunningStack(state, url, task, workhorses, more_rails)
                finally:
                    if scheduler is not None:
                        await scheduler.stop()
                        logging.getLogger(JOB_LOGGER).removeHandler(log_handler)
                        log_handler.close()
            finally:
                await asyncio.gather(*(rails.stop() for rails in more_rails))
                server.should_exit = True
                await asyncio.gather(task, return_exceptions=True)
        finally:
            await asyncio.gather(*(workhorse.stop() for workhorse in workhorses))

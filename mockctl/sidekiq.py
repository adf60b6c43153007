"""mockcoord's Sidekiq: the cron schedule (``app.workers.scheduler``) where mockcoord runs it.

``mockcoord serve`` runs it inside the Rails process (``mockctl.stack``); ``mockcoord worker``
runs only it, in as many processes as you like, against the database and bucket Rails uses.
Each process reads the shared mock clock and release (``mockctl.shared_state``) before every
look at the schedule, and logs each run as one line of GitLab's JSON Sidekiq log.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import Database
from app.instrumentation import Instrument
from app.lib import gitlab_version
from app.state import AppState
from app.storage import open_store
from app.workers.scheduler import Scheduler
from mockctl import shared_state

JOB_LOGGER = "mockcoord.sidekiq"


class _JobLinesOnly(logging.Filter):
    """The scheduler's JSON lines (they start with ``{``) and its warnings, not the workers'
    own notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith("{")


def log_jobs_to(target: Path | TextIO) -> logging.Handler:
    """Send the JSON job lines to a file (``log/sidekiq.log``) or a stream; answers the handler
    (remove it with ``logging.getLogger(JOB_LOGGER).removeHandler``)."""
    handler: logging.Handler
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target)
    else:
        handler = logging.StreamHandler(target)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_JobLinesOnly())
    logger = logging.getLogger(JOB_LOGGER)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def scheduler_for(state: AppState) -> Scheduler:
    """A poller that takes the shared clock and release before each look."""
    return Scheduler(state, before_tick=lambda: shared_state.load(state))


async def open_state(settings: Settings) -> AppState:
    """What a Sidekiq process holds: the database and bucket Rails uses. Tables are created
    when missing (a worker may start first); a database an older mockcoord made is refused, as
    Rails refuses it. Nothing is seeded: that is Rails' part."""
    gitlab_version.configure(settings.gitlab_version)
    db = Database(settings.resolved_database_url)
    try:
        if stale := await db.stale_tables():
            where = make_url(settings.resolved_database_url).render_as_string()
            raise RuntimeError(f"the database {where} was made by an older mockcoord ({'; '.join(stale)} missing)")
        await db.create_all()
        store = await open_store(settings)
    except BaseException:
        await db.dispose()
        raise
    # No Workhorse secret: nothing a cron worker does signs or checks a Workhorse JWT.
    state = AppState(settings=settings, db=db, store=store, secret=b"", raw_store=store, instrument=Instrument())
    await shared_state.load(state)
    return state


async def close_state(state: AppState) -> None:
    await state.store.close()
    await state.db.dispose()


async def run_worker(settings: Settings, stop: asyncio.Event, say: Callable[[str], None]) -> list[str]:
    """Run the schedule until ``stop`` is set; answers the cron jobs cut short by the stop
    (those whose runs outlived ``cron_shutdown_timeout``)."""
    state = await open_state(settings)
    try:
        scheduler = scheduler_for(state)
        await scheduler.start()
        jobs = ", ".join(f"{e.cron_job} ({e.cron})" for e in scheduler.entries) or "none (every cron job is disabled)"
        say(f"mockcoord worker is running the cron schedule: {jobs}")
        await stop.wait()
        running = sorted(scheduler.running)
        if running:
            say(
                f"stopping: waiting up to {settings.cron_shutdown_timeout:g}s for {', '.join(running)} "
                "(what they did is committed batch by batch)"
            )
        cancelled = await scheduler.stop()
        if cancelled:
            say(f"stopped {', '.join(cancelled)} mid-run; the next run takes up the rest")
        return cancelled
    finally:
        await close_state(state)


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

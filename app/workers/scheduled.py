"""The workers GitLab enqueues with ``perform_in`` (Sidekiq's scheduled set,
``app.workers.scheduled_set``), by class name, and ``run_due``: what a Sidekiq process's
scheduled poller does on each look, every due job run once, in due order."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from app.state import AppState
from app.workers import scheduled_set
from app.workers.projects.finalize_project_statistics_refresh_worker import FinalizeProjectStatisticsRefreshWorker

log = logging.getLogger("mockcoord.sidekiq")


class ScheduledWorker(Protocol):
    job_class: str

    def __init__(self, state: AppState) -> None: ...

    async def perform(self, *args: Any) -> dict[str, Any]: ...


SCHEDULED_WORKERS: dict[str, type[ScheduledWorker]] = {
    w.job_class: w for w in (FinalizeProjectStatisticsRefreshWorker,)
}


async def run_due(state: AppState) -> list[dict[str, Any]]:
    """Every job due on the mock clock, run once; a failing job is logged and the rest run (a
    Sidekiq job's failure is its own). Answers ``{job_class, args, result | error}`` a job."""
    ran: list[dict[str, Any]] = []
    while jobs := await scheduled_set.take_due(state):
        for job in jobs:
            entry: dict[str, Any] = {"job_class": job.job_class, "args": job.args}
            worker = SCHEDULED_WORKERS.get(job.job_class)
            try:
                if worker is None:
                    raise LookupError(f"no worker {job.job_class}")
                entry["result"] = await worker(state).perform(*job.args)
            except Exception as exc:  # noqa: BLE001 - the job fails, the poller goes on
                log.warning("%s failed: %s", job.job_class, exc)
                entry["error"] = f"{type(exc).__name__}: {exc}"
            ran.append(entry)
    return ran

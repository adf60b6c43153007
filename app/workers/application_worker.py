"""``ApplicationWorker``: what every Sidekiq worker of GitLab's has, here the process's state
and the one line a finished job logs (``log_extra_metadata_on_done``)."""

from __future__ import annotations

import logging
from typing import Any

from app.state import AppState

log = logging.getLogger("mockcoord.sidekiq")


class ApplicationWorker:
    job_class: str  # GitLab's class name

    def __init__(self, state: AppState) -> None:
        self.state = state

    def done(self, metadata: dict[str, Any]) -> dict[str, Any]:
        log.info("%s done: %s", self.job_class, metadata)
        return metadata


class CronjobWorker(ApplicationWorker):
    """``CronjobQueue``: a worker ``Settings.cron_jobs`` schedules."""

    cron_job: str  # the key in Settings.cron_jobs
    cron: str  # its default schedule

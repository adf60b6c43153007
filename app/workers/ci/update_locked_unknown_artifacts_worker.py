"""``Ci::UpdateLockedUnknownArtifactsWorker``: GitLab's cron worker (``*/7 * * * *``, cron job
``update_locked_unknown_artifacts_worker``) that works through the ``unknown`` backlog.
Idle unless ``ci_job_artifacts_backlog_work`` is on (off by default in 15.0-15.2): then the
service is not even built and nothing is logged."""

from __future__ import annotations

from typing import Any

from app.lib import feature
from app.services.ci.job_artifacts.update_unknown_locked_status_service import UpdateUnknownLockedStatusService
from app.workers.application_worker import CronjobWorker


class UpdateLockedUnknownArtifactsWorker(CronjobWorker):
    job_class = "Ci::UpdateLockedUnknownArtifactsWorker"
    cron_job = "update_locked_unknown_artifacts_worker"
    cron = "*/7 * * * *"

    async def perform(self) -> dict[str, Any]:
        async with self.state.db.session() as session:
            if not await feature.enabled(session, "ci_job_artifacts_backlog_work"):
                return {}
        done = await UpdateUnknownLockedStatusService(self.state).execute()
        return self.done(done)

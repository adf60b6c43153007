"""``ExpireBuildArtifactsWorker``: GitLab's cron worker (``*/7 * * * *``, cron job
``expire_build_artifacts_worker``) that destroys expired unlocked artifacts."""

from __future__ import annotations

from typing import Any

from app.services.ci.job_artifacts.destroy_all_expired_service import DestroyAllExpiredService
from app.workers.application_worker import CronjobWorker


class ExpireBuildArtifactsWorker(CronjobWorker):
    job_class = "ExpireBuildArtifactsWorker"
    cron_job = "expire_build_artifacts_worker"
    cron = "*/7 * * * *"

    async def perform(self) -> dict[str, Any]:
        """``log_extra_metadata_on_done(:destroyed_job_artifacts_count, ...)``."""
        done = {"destroyed_job_artifacts_count": await DestroyAllExpiredService(self.state).execute()}
        return self.done(done)

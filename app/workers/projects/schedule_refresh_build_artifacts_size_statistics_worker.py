"""``Projects::ScheduleRefreshBuildArtifactsSizeStatisticsWorker``: GitLab's cron worker
(``2/17 * * * *``: minutes 2, 19, 36 and 53; cron job
``projects_schedule_refresh_build_artifacts_size_statistics_worker``) that starts
``Projects::RefreshBuildArtifactsSizeStatisticsWorker`` with capacity."""

from __future__ import annotations

from typing import Any

from app.workers.application_worker import CronjobWorker
from app.workers.projects.refresh_build_artifacts_size_statistics_worker import (
    RefreshBuildArtifactsSizeStatisticsWorker,
)


class ScheduleRefreshBuildArtifactsSizeStatisticsWorker(CronjobWorker):
    job_class = "Projects::ScheduleRefreshBuildArtifactsSizeStatisticsWorker"
    cron_job = "projects_schedule_refresh_build_artifacts_size_statistics_worker"
    cron = "2/17 * * * *"

    async def perform(self) -> dict[str, Any]:
        return await RefreshBuildArtifactsSizeStatisticsWorker(self.state).perform_with_capacity()

"""The cron workers by GitLab's cron job name (``Settings.cron_jobs``): what a scheduler runs
on their ``cron`` lines, and what the control plane can run at once."""

from __future__ import annotations

from typing import Any, Protocol

from app.state import AppState
from app.workers.ci.schedule_delete_objects_cron_worker import ScheduleDeleteObjectsCronWorker
from app.workers.ci.update_locked_unknown_artifacts_worker import UpdateLockedUnknownArtifactsWorker
from app.workers.expire_build_artifacts_worker import ExpireBuildArtifactsWorker
from app.workers.object_storage.delete_stale_direct_uploads_worker import DeleteStaleDirectUploadsWorker
from app.workers.projects.schedule_refresh_build_artifacts_size_statistics_worker import (
    ScheduleRefreshBuildArtifactsSizeStatisticsWorker,
)


class CronWorker(Protocol):
    job_class: str  # GitLab's class name
    cron_job: str
    cron: str

    def __init__(self, state: AppState) -> None: ...

    async def perform(self) -> dict[str, Any]: ...


CRON_WORKERS: dict[str, type[CronWorker]] = {
    w.cron_job: w
    for w in (
        ExpireBuildArtifactsWorker,
        UpdateLockedUnknownArtifactsWorker,
        ScheduleDeleteObjectsCronWorker,
        DeleteStaleDirectUploadsWorker,
        ScheduleRefreshBuildArtifactsSizeStatisticsWorker,
    )
}

"""``Ci::ScheduleDeleteObjectsCronWorker``: GitLab's cron worker (``*/16 * * * *``, cron job
``ci_schedule_delete_objects_worker``, four runs an hour, not "hourly at minute 16" as the
administrator page says) that starts ``Ci::DeleteObjectsWorker`` with capacity."""

from __future__ import annotations

from typing import Any

from app.workers.application_worker import CronjobWorker
from app.workers.ci.delete_objects_worker import DeleteObjectsWorker


class ScheduleDeleteObjectsCronWorker(CronjobWorker):
    job_class = "Ci::ScheduleDeleteObjectsCronWorker"
    cron_job = "ci_schedule_delete_objects_worker"
    cron = "*/16 * * * *"

    async def perform(self) -> dict[str, Any]:
        return await DeleteObjectsWorker(self.state).perform_with_capacity()

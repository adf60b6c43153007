"""``ObjectStorage::DeleteStaleDirectUploadsWorker``: GitLab's cron worker (``*/6 * * * *``,
cron job ``object_storage_delete_stale_direct_uploads_worker``) that lets stale direct uploads
go. Nothing schedules it yet (the housekeeping work brings the schedule); until then
``perform()`` runs it on demand."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.services.object_storage import delete_stale_direct_uploads_service
from app.workers.application_worker import CronjobWorker


class DeleteStaleDirectUploadsWorker(CronjobWorker):
    job_class = "ObjectStorage::DeleteStaleDirectUploadsWorker"
    cron_job = "object_storage_delete_stale_direct_uploads_worker"
    cron = "*/6 * * * *"

    async def perform(self) -> dict[str, Any]:
        """Runs the service; answers what GitLab logs with ``log_extra_metadata_on_done``."""
        done = asdict(await delete_stale_direct_uploads_service.execute(self.state))
        return self.done(done)

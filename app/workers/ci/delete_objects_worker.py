"""``Ci::DeleteObjectsWorker``: a ``LimitedCapacity::Worker`` of at most 20 jobs at once, each
removing one batch of deleted objects and coming back while work remains."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.services.ci import delete_objects_service
from app.workers.application_worker import ApplicationWorker


@dataclass
class Totals:
    removed: int = 0
    failed: int = 0
    jobs: int = 0


class DeleteObjectsWorker(ApplicationWorker):
    job_class = "Ci::DeleteObjectsWorker"

    def max_running_jobs(self) -> int:
        return self.state.settings.housekeeping.delete_objects_max_running_jobs

    async def perform_with_capacity(self) -> dict[str, Any]:
        """As many jobs as there are batches, at most ``max_running_jobs``; each re-enqueues itself
        while batches remain ready (failed rows wait for their retry, ten minutes on, so they do
        not keep a job busy)."""
        capacity = self.max_running_jobs()
        wanted = await delete_objects_service.remaining_batches_count(self.state, capacity)
        totals = Totals()
        await asyncio.gather(*(self._job(totals) for _ in range(min(wanted, capacity))))
        done = {"removed_count": totals.removed, "failed_count": totals.failed, "jobs": totals.jobs}
        return self.done(done)

    async def _job(self, totals: Totals) -> None:
        while True:
            result = await delete_objects_service.execute(self.state)
            totals.jobs += 1
            totals.removed += result.removed
            totals.failed += result.failed
            if not (result.removed or result.failed):  # other jobs took what was left
                return
            if not await delete_objects_service.remaining_batches_count(self.state, 1):
                return

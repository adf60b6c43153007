"""``Projects::RefreshBuildArtifactsSizeStatisticsWorker``: a ``LimitedCapacity::Worker`` whose
jobs each refresh one batch and come back while refreshes remain.

Its capacity comes from ops feature flags: ``projects_build_artifacts_size_refresh_high`` 5,
``_medium`` 3, ``projects_build_artifacts_size_refresh`` 1 (older releases: 50, 20, 2), and 0
when all are off, when queued refreshes never run.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from app import clock
from app.lib import feature
from app.services.projects import build_artifacts_size_refresh as refreshes
from app.services.projects import refresh_build_artifacts_size_statistics_service as service
from app.workers.application_worker import ApplicationWorker

MAX_RUNNING_LOW = 1
MAX_RUNNING_MEDIUM = 3
MAX_RUNNING_HIGH = 5


class RefreshBuildArtifactsSizeStatisticsWorker(ApplicationWorker):
    job_class = "Projects::RefreshBuildArtifactsSizeStatisticsWorker"

    async def max_running_jobs(self) -> int:
        async with self.state.db.session() as session:
            if await feature.enabled(session, "projects_build_artifacts_size_refresh_high"):
                return MAX_RUNNING_HIGH
            if await feature.enabled(session, "projects_build_artifacts_size_refresh_medium"):
                return MAX_RUNNING_MEDIUM
            if await feature.enabled(session, "projects_build_artifacts_size_refresh"):
                return MAX_RUNNING_LOW
        return 0

    async def remaining_work_count(self) -> int:
        """1 while any refresh remains (an EXISTS, not a count), else 0."""
        async with self.state.db.session() as session:
            return 1 if await refreshes.remaining_any(session) else 0

    async def perform_work(self) -> dict[str, Any]:
        """One batch; what the job logs (``log_extra_metadata_on_done``), empty when nothing was taken."""
        done = await service.execute(self.state)
        if done is None:
            return {}
        metadata = asdict(done)
        metadata["refresh_started_at"] = clock.iso(done.refresh_started_at)
        return metadata

    async def perform_with_capacity(self) -> dict[str, Any]:
        """``max_running_jobs`` jobs; each runs a batch and re-enqueues itself while work remains
        (``LimitedCapacity::Worker#re_enqueue``)."""
        capacity = await self.max_running_jobs()
        batches: list[dict[str, Any]] = []

        async def job() -> None:
            while await self.remaining_work_count():
                done = await self.perform_work()
                if not done:  # another job took what was left
                    return
                batches.append(done)

        await asyncio.gather(*(job() for _ in range(capacity)))
        finalizing = sorted({b["refresh_id"] for b in batches if b["last_batch"]})
        return self.done(
            {
                "max_running_jobs": capacity,
                "batches": len(batches),
                "artifacts": sum(b["artifacts"] for b in batches),
                "bytes": sum(b["bytes"] for b in batches),
                "finalizing_refresh_ids": finalizing,
            }
        )

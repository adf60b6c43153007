"""``Projects::RefreshBuildArtifactsSizeStatisticsService``: one batch of one refresh.

Takes the next refresh (``process_next_refresh!``); with artifacts left below the id remembered
at its start, sums the next batch (500, ordered by id) into the refresh counter, one
``Increment(size, ref: id)`` an artifact, and puts the refresh back (pending) in the same
transaction, then sleeps 0.1 s; with none left, schedules the finalizing step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from app.models import RefreshState
from app.services.projects import build_artifacts_size_refresh as refreshes
from app.services.projects.statistics import Increment, bulk_increment_build_artifacts_size
from app.state import AppState


@dataclass(frozen=True)
class RefreshBatch:
    """What the worker logs with ``log_extra_metadata_on_done``."""

    refresh_id: int
    project_id: int
    last_job_artifact_id: int | None
    last_batch: bool  # no artifacts were left: the refresh is finalizing
    refresh_started_at: datetime | None
    artifacts: int
    bytes: int


async def execute(state: AppState) -> RefreshBatch | None:
    limits = state.settings.housekeeping
    async with state.db.session() as session:
        refresh = await refreshes.process_next_refresh(session)
        if refresh is None or refresh.state != RefreshState.running:
            return None
        assert refresh.id is not None
        batch = await refreshes.next_batch(session, refresh, limits.refresh_batch_size)
        if batch:
            await refreshes.requeue(session, refresh, batch[-1][0])
            increments = [Increment(size, artifact_id) for artifact_id, size in batch]
            await bulk_increment_build_artifacts_size(session, refresh.project_id, increments)
        else:
            await refreshes.schedule_finalize(session, refresh)
        await session.commit()
    if batch:
        await asyncio.sleep(limits.refresh_interval_seconds)
    return RefreshBatch(
        refresh_id=refresh.id,
        project_id=refresh.project_id,
        last_job_artifact_id=refresh.last_job_artifact_id,
        last_batch=not batch,
        refresh_started_at=refresh.refresh_started_at,
        artifacts=len(batch),
        bytes=sum(size for _, size in batch),
    )

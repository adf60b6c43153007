"""``Ci::RetryPipelineService``: every failed or canceled job of a pipeline again."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import BuildStatus, Pipeline
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.build_state import latest_jobs
from app.services.ci.reset_skipped_jobs_service import reset_skipped
from app.services.ci.retry_job_service import clone_job


async def retry_pipeline(session: AsyncSession, pipeline: Pipeline, user_id: int | None) -> None:
    """``Ci::RetryPipelineService``: every failed or canceled job again (action jobs wait for a
    play again), then the skipped ones after them."""
    failed = [j for j in await latest_jobs(session, pipeline) if j.status in (BuildStatus.failed, BuildStatus.canceled)]
    if not failed:
        return
    for job in failed:
        await clone_job(session, job, user_id, ())
    await reset_skipped(session, pipeline.id, failed)  # type: ignore[arg-type]
    await session.commit()
    await process_pipeline(session, pipeline.id)  # type: ignore[arg-type]

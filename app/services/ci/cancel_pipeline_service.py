"""``Ci::CancelPipelineService``: every cancelable job of a pipeline, then one processing pass."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import BuildStatus, Pipeline
from app.services.ci.build_cancel_service import after_cancel, cancel_one
from app.services.ci.build_state import CANCELABLE, latest_jobs
from app.state import AppState


async def cancel_pipeline(state: AppState, session: AsyncSession, pipeline: Pipeline) -> None:
    """``Ci::CancelPipelineService``: every cancelable job of the pipeline."""
    assert pipeline.id is not None
    stopped = [
        job
        for job in await latest_jobs(session, pipeline)
        if job.status in (*CANCELABLE, BuildStatus.manual) and await cancel_one(session, job, force=False)
    ]
    if stopped:
        await after_cancel(state, session, pipeline.id, stopped)

"""``Ci::PlayBuildService``: a manual job enqueued with its player's variables; a finished one
retried."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import Build, BuildStatus, JobVariable
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.build_state import refreshed, transition
from app.services.ci.retry_job_service import PlayVariable, retry


async def play(session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable]) -> Build:
    """``Ci::PlayBuildService``: a manual job is enqueued with the player as its user and the
    variables given; a finished one is retried."""
    if job.status not in (BuildStatus.manual, BuildStatus.scheduled):
        return await retry(session, job, user_id, variables)
    for variable in variables:
        session.add(JobVariable(job_id=job.id, key=variable.key, value=variable.value))  # type: ignore[arg-type]
    await session.flush()
    values = {"status": BuildStatus.pending, "queued_at": clock.now(), "user_id": user_id}
    if not await transition(session, job, [BuildStatus.manual, BuildStatus.scheduled], **values):
        return await refreshed(session, job)  # someone else played or canceled it first
    await process_pipeline(session, job.commit_id)
    return await refreshed(session, job)

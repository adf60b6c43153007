"""``Ci::RetryJobService``: a finished job again, as a clone; the old one is kept as history
(``retried``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import Build, BuildNeed, BuildStatus, JobVariable
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.build_state import ACTIONS, refreshed
from app.services.ci.reset_skipped_jobs_service import reset_skipped


@dataclass(frozen=True)
class PlayVariable:
    key: str
    value: str


async def clone_job(session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable]) -> Build:
    """``Ci::RetryJobService#clone!``: the same job definition, a new id and token, the old one retried."""
    clone = Build(
        project_id=job.project_id,
        commit_id=job.commit_id,
        name=job.name,
        stage=job.stage,
        stage_idx=job.stage_idx,
        status=BuildStatus.created,
        user_id=user_id,
        ref=job.ref,
        tag=job.tag,
        when=job.when,
        allow_failure=job.allow_failure,
        options=job.options,
        partition_id=job.partition_id,
        scheduling_type=job.scheduling_type,
    )
    session.add(clone)
    await session.flush()
    for need in (await session.exec(select(BuildNeed).where(BuildNeed.build_id == job.id))).all():
        session.add(BuildNeed(build_id=clone.id, name=need.name, artifacts=need.artifacts, optional=need.optional))  # type: ignore[arg-type]
    kept = variables or [
        PlayVariable(v.key, v.value)
        for v in (await session.exec(select(JobVariable).where(JobVariable.job_id == job.id))).all()
    ]
    for variable in kept:
        session.add(JobVariable(job_id=clone.id, key=variable.key, value=variable.value))  # type: ignore[arg-type]
    job.retried = True
    session.add(job)
    return clone


async def retry(
    session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable] = ()
) -> Build:
    """``Ci::RetryJobService#execute``: the clone waits for processing, except an action job,
    which is enqueued at once (``enqueue_if_actionable``)."""
    clone = await clone_job(session, job, user_id, variables)
    if job.when in ACTIONS:
        clone.status, clone.queued_at = BuildStatus.pending, clock.now()
    await reset_skipped(session, job.commit_id, [job])
    await session.commit()
    await process_pipeline(session, job.commit_id)
    return await refreshed(session, clone)

"""``Ci::BuildEraseService``: a finished job loses its artifacts and its log.

Every artifact of the job, the ``trace`` artifact included, goes through ``destroy_batch``
(rows become ``ci_deleted_objects``, usage drops by their sizes); then the live trace's
chunks are deleted (``trace.erase!``) and the job is marked erased (``erased_by``,
``erased_at``, ``artifacts_expire_at = nil``) in one transaction.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import COMPLETED_STATUSES, Build, BuildTraceChunk, JobArtifact
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch


async def erasable(session: AsyncSession, job: Build) -> bool:
    """``Ci::Build#erasable?``: ``complete? && (artifacts? || has_job_artifacts? || has_trace?)``.
    Any artifact row counts (the archive and the archived trace among them); a live trace is
    its chunks."""
    if job.status not in COMPLETED_STATUSES:
        return False
    has_artifacts = exists().where(JobArtifact.job_id == job.id)
    has_chunks = exists().where(BuildTraceChunk.build_id == job.id)
    return bool((await session.exec(select(has_artifacts | has_chunks))).one())


async def job_artifacts(session: AsyncSession, job_id: int) -> list[JobArtifact]:
    """``build.job_artifacts``: all of them, trace and metadata included."""
    rows = await session.exec(select(JobArtifact).where(JobArtifact.job_id == job_id).order_by(col(JobArtifact.id)))
    return list(rows.all())


async def erase(session: AsyncSession, job: Build, user_id: int | None) -> Build:
    """``BuildEraseService#execute`` once the API has checked ``erasable?`` and the stats
    refresh: ``destroy_artifacts``, ``erase_trace!``, ``update_erased!``. Answers the job as
    it is now."""
    assert job.id is not None
    await destroy_batch(session, await job_artifacts(session, job.id))
    await session.exec(delete(BuildTraceChunk).where(col(BuildTraceChunk.build_id) == job.id))  # type: ignore[call-overload]
    await session.exec(  # type: ignore[call-overload]
        update(Build)
        .where(col(Build.id) == job.id)
        .values(erased_by_id=user_id, erased_at=clock.now(), artifacts_expire_at=None)
    )
    await session.commit()
    fresh = await session.get(Build, job.id, populate_existing=True)
    assert fresh is not None
    return fresh

"""``Ci::BuildEraseService``: a finished job loses its artifacts and its log.

Every artifact of the job, the ``trace`` artifact included, goes through ``destroy_batch``
(rows become ``ci_deleted_objects``, usage drops by their sizes); then, in one transaction,
``trace.erase!`` (the trace artifact if the batch left it, as 15.x and 16.x's did, destroyed
as a record; the live trace's chunks) and the job is marked erased (``erased_by``,
``erased_at``, ``artifacts_expire_at = nil``).
"""

from __future__ import annotations

from sqlalchemy import delete, exists, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import COMPLETED_STATUSES, Build, BuildTraceChunk, FileType, JobArtifact
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch
from app.services.ci.job_artifacts.destroy_record import destroy_records, remove_files
from app.state import AppState


async def erasable(session: AsyncSession, job: Build) -> bool:
    """``Ci::Build#erasable?``: ``complete? && (artifacts? || has_job_artifacts? || has_trace?)``.
    Any artifact row counts (the archive and the archived trace among them); a live trace is
    its chunks."""
    if job.status not in COMPLETED_STATUSES:
        return False
    has_artifacts = exists().where(JobArtifact.job_id == job.id)
    has_chunks = exists().where(BuildTraceChunk.build_id == job.id)
    return bool((await session.exec(select(has_artifacts | has_chunks))).one())


async def job_artifacts(session: AsyncSession, job_id: int, *file_types: FileType) -> list[JobArtifact]:
    """``build.job_artifacts``: all of them, trace and metadata included (or those types)."""
    query = select(JobArtifact).where(JobArtifact.job_id == job_id)
    if file_types:
        query = query.where(col(JobArtifact.file_type).in_(file_types))
    return list((await session.exec(query.order_by(col(JobArtifact.id)))).all())


async def erase(state: AppState, session: AsyncSession, job: Build, user_id: int | None) -> Build:
    """``BuildEraseService#execute`` once the API has checked ``erasable?`` and the stats
    refresh: ``destroy_artifacts``, ``erase_trace!``, ``update_erased!``. Answers the job as
    it is now."""
    assert job.id is not None
    await destroy_batch(session, await job_artifacts(session, job.id))
    removed = await destroy_records(session, await job_artifacts(session, job.id, FileType.trace))
    await session.exec(delete(BuildTraceChunk).where(col(BuildTraceChunk.build_id) == job.id))  # type: ignore[call-overload]
    await session.exec(  # type: ignore[call-overload]
        update(Build)
        .where(col(Build.id) == job.id)
        .values(erased_by_id=user_id, erased_at=clock.now(), artifacts_expire_at=None)
    )
    await session.commit()
    await remove_files(state, removed)
    fresh = await session.get(Build, job.id, populate_existing=True)
    assert fresh is not None
    return fresh

"""``Gitlab::Ci::Trace``: reading a job's log, live (``ci_build_trace_chunks``) or archived (its
``trace`` artifact)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import BuildTraceChunk, FileType, JobArtifact

UPDATE_INTERVAL = 30  # Gitlab::Ci::Trace::UPDATE_FREQUENCY_DEFAULT (3 s while someone watches)


async def trace_size(session: AsyncSession, job_id: int) -> int:
    size = (
        await session.exec(select(func.length(BuildTraceChunk.raw_data)).where(BuildTraceChunk.build_id == job_id))
    ).first()
    return int(size or 0)


async def live_chunk(session: AsyncSession, job_id: int) -> BuildTraceChunk | None:
    """The trace while the job runs (until it is archived)."""
    return (await session.exec(select(BuildTraceChunk).where(BuildTraceChunk.build_id == job_id))).first()


async def archived(session: AsyncSession, job_id: int) -> JobArtifact | None:
    """The job's ``trace`` artifact, once archived."""
    query = select(JobArtifact).where(JobArtifact.job_id == job_id, JobArtifact.file_type == FileType.trace)
    return (await session.exec(query)).first()

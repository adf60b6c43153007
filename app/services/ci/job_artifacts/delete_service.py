"""``Ci::JobArtifacts::DeleteService``: a job's erasable artifacts (all but its trace), destroyed
in one batch."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import FileType, JobArtifact
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch

NON_ERASABLE_FILE_TYPES = (FileType.trace,)


async def erasable_artifacts(session: AsyncSession, job_id: int) -> list[JobArtifact]:
    """``job_artifacts.erasable``: everything but the trace."""
    rows = await session.exec(
        select(JobArtifact)
        .where(JobArtifact.job_id == job_id, col(JobArtifact.file_type).not_in(NON_ERASABLE_FILE_TYPES))
        .order_by(col(JobArtifact.id))
    )
    return list(rows.all())


async def delete_job_artifacts(session: AsyncSession, job_id: int) -> int:
    """``Ci::JobArtifacts::DeleteService``: the job's erasable artifacts, through ``destroy_batch``."""
    return await destroy_batch(session, await erasable_artifacts(session, job_id), fix_expire_at=False)

"""``Ci::JobArtifacts::DeleteService``: a job's erasable artifacts (all but its trace), destroyed
in one batch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Build, FileType, JobArtifact
from app.services.ci.job_artifacts import destroy_batch_service
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch
from app.services.projects.build_artifacts_size_refresh import refreshing_build_artifacts_size

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


REFRESHING = "Action temporarily disabled. The project this job belongs to is undergoing stats refresh."


@dataclass(frozen=True)
class DeleteResult:
    """``ServiceResponse``: success with ``destroyed_artifacts_count``, or an error message."""

    destroyed_artifacts_count: int = 0
    destroyed_bytes: int = 0
    message: str | None = None  # an error
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.message is None


async def execute(session: AsyncSession, build: Build) -> DeleteResult:
    """``Ci::JobArtifacts::DeleteService.new(build).execute`` (newest): while the project's usage is
    being recounted nothing is deleted (the error GitLab returns, reason ``project_stats_refresh``);
    else the job's erasable artifacts go through ``DestroyBatchService``."""
    assert build.id is not None
    if await refreshing_build_artifacts_size(session, build.project_id):
        return DeleteResult(message=REFRESHING, reason="project_stats_refresh")
    artifacts = await erasable_artifacts(session, build.id)
    result = await destroy_batch_service.execute(session, artifacts, fix_expire_at=False)
    return DeleteResult(result.count, result.bytes)

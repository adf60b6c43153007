"""``Ci::JobArtifacts::ExpireProjectBuildArtifactsService``: every unlocked erasable artifact of a
project expires now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import ArtifactLocked, FileType, JobArtifact
from app.services.ci.job_artifacts.delete_service import NON_ERASABLE_FILE_TYPES

EXPIRE_BATCH_SIZE = 1000  # ``ExpireProjectBuildArtifactsService::BATCH_SIZE``


async def expire_project_artifacts(session: AsyncSession, project_id: int, expiry_time: datetime) -> int:
    """Every unlocked erasable artifact of the project now expires at ``expiry_time``, in id
    order, a batch of 1000 per commit. Nothing is deleted here: expired artifacts go with
    the next ``ExpireBuildArtifactsWorker`` run. Locked artifacts (and ``unknown`` ones) and
    traces are left alone, and so is the jobs' ``artifacts_expire_at``. Returns the count."""
    erasable = [t for t in FileType if t not in NON_ERASABLE_FILE_TYPES]
    last_id, changed = 0, 0
    while True:
        ids = (
            await session.exec(
                select(JobArtifact.id)
                .where(
                    JobArtifact.project_id == project_id,
                    col(JobArtifact.id) > last_id,
                    col(JobArtifact.file_type).in_(erasable),
                    JobArtifact.locked == ArtifactLocked.unlocked,
                )
                .order_by(col(JobArtifact.id))
                .limit(EXPIRE_BATCH_SIZE)
            )
        ).all()
        if not ids:
            return changed
        await session.exec(  # type: ignore[call-overload]
            update(JobArtifact).where(col(JobArtifact.id).in_(ids)).values(expire_at=expiry_time)
        )
        await session.commit()
        changed += len(ids)
        last_id = ids[-1]

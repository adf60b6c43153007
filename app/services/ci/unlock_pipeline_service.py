"""Keep-latest-artifact unlocking: ``Ci::Refs::UnlockPreviousPipelinesWorker`` ->
``Ci::Refs::EnqueuePipelinesToUnlockService`` -> ``Ci::UnlockPipelineService``.

When a pipeline stops (success, failed, canceled, skipped or blocked on a manual job),
the locked pipelines of its ref older than the ref's newest stopped pipeline are unlocked,
except the ref's newest successful one; a pipeline's job artifacts are unlocked before
the pipeline itself. GitLab queues this in Redis and a worker; here it happens in the
transaction that stopped the pipeline.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.lib import feature
from app.models import ArtifactLocked, Build, BuildStatus, JobArtifact, Pipeline

UNLOCKABLE_STATUSES = {
    BuildStatus.success,
    BuildStatus.failed,
    BuildStatus.canceled,
    BuildStatus.skipped,
    BuildStatus.manual,
}


def _same_ref(pipeline: Pipeline) -> list[Any]:
    return [Pipeline.project_id == pipeline.project_id, Pipeline.ref == pipeline.ref, Pipeline.tag == pipeline.tag]


async def unlock_previous_pipelines(session: AsyncSession, pipeline: Pipeline) -> list[int]:
    """Unlock what the ref no longer needs; the ids of the pipelines unlocked."""
    same_ref = _same_ref(pipeline)
    newest = select(Pipeline.id).where(*same_ref).order_by(col(Pipeline.id).desc())
    before = (await session.exec(newest.where(col(Pipeline.status).in_(UNLOCKABLE_STATUSES)))).first()
    if before is None:
        return []
    keep = {before}
    last_success = (await session.exec(newest.where(Pipeline.status == BuildStatus.success))).first()
    if last_success is not None:
        keep.add(last_success)
    targets = list(
        (
            await session.exec(
                select(Pipeline.id).where(
                    *same_ref,
                    Pipeline.locked == ArtifactLocked.artifacts_locked,
                    col(Pipeline.id) < before,
                    col(Pipeline.id).not_in(keep),
                )
            )
        ).all()
    )
    if not targets:
        return []
    if await feature.enabled(session, "ci_update_unlocked_job_artifacts"):  # else only pipelines unlock
        jobs = select(Build.id).where(col(Build.commit_id).in_(targets))
        await session.exec(  # type: ignore[call-overload]
            update(JobArtifact).where(col(JobArtifact.job_id).in_(jobs)).values(locked=ArtifactLocked.unlocked)
        )
    await session.exec(  # type: ignore[call-overload]
        update(Pipeline).where(col(Pipeline.id).in_(targets)).values(locked=ArtifactLocked.unlocked)
    )
    return targets

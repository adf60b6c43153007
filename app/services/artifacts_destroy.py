"""Deleting artifacts the way GitLab does: rows go, files wait (``Ci::JobArtifacts::DestroyBatchService``,
``Ci::JobArtifacts::DeleteService``).

In one transaction each artifact row becomes a ``Ci::DeletedObject`` (its store, directory,
file name and ``pick_up_at``), the rows are deleted and ``build_artifacts_size`` drops by
their sizes. The stored objects are left for ``Ci::DeleteObjectsService`` to remove once
``pick_up_at`` has passed, so a failure at any point loses no file and leaves no row
pointing at nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.errors import APIError
from app.models import BuildArtifactsSizeRefresh, DeletedObject, FileType, JobArtifact, RefreshState
from app.services.artifact_files import store_dir_and_file
from app.services.statistics import increment_build_artifacts_size

NON_ERASABLE_FILE_TYPES = (FileType.trace,)
PICK_UP_NOT_BEFORE = timedelta(days=1)  # ``pick_up_at`` is clamped to [now - 1 day, now + 1 hour]
PICK_UP_NOT_AFTER = timedelta(hours=1)


def pick_up_at(artifact: JobArtifact, given: datetime | None, now: datetime) -> datetime:
    """``to_deleted_object_attrs``: the given time, else the artifact's expiry, else now; clamped."""
    when = given or artifact.expire_at or now
    return min(max(when, now - PICK_UP_NOT_BEFORE), now + PICK_UP_NOT_AFTER)


async def destroy_batch(session: AsyncSession, artifacts: list[JobArtifact], given: datetime | None = None) -> int:
    """``DestroyBatchService#execute``; commits, returns how many artifacts went. The rows are
    deleted first (``RETURNING``), so a concurrent deletion of the same artifacts records
    each object and each size once."""
    if not artifacts:
        return 0
    deleted = await session.exec(  # type: ignore[call-overload]
        delete(JobArtifact).where(col(JobArtifact.id).in_([a.id for a in artifacts])).returning(JobArtifact.id)
    )
    gone_ids = set(deleted.scalars().all())
    gone = [a for a in artifacts if a.id in gone_ids]
    now = clock.now()
    sizes: dict[int, int] = defaultdict(int)
    for artifact in gone:
        store_dir, file = store_dir_and_file(artifact)
        session.add(
            DeletedObject(
                file_store=artifact.file_store,
                pick_up_at=pick_up_at(artifact, given, now),
                store_dir=store_dir,
                file=file,
                project_id=artifact.project_id,
            )
        )
        sizes[artifact.project_id] += artifact.size or 0
    for project_id, size in sizes.items():
        await increment_build_artifacts_size(session, project_id, -size)
    await session.commit()
    return len(gone)


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
    return await destroy_batch(session, await erasable_artifacts(session, job_id))


async def refreshing_build_artifacts_size(session: AsyncSession, project_id: int) -> bool:
    """``Project#refreshing_build_artifacts_size?``: a refresh that has started (not merely created)."""
    state = (
        await session.exec(
            select(BuildArtifactsSizeRefresh.state).where(BuildArtifactsSizeRefresh.project_id == project_id)
        )
    ).first()
    return state is not None and state != RefreshState.created


async def reject_if_build_artifacts_size_refreshing(session: AsyncSession, project_id: int) -> None:
    """``reject_if_build_artifacts_size_refreshing!``: 409 while the usage is being recounted."""
    if await refreshing_build_artifacts_size(session, project_id):
        raise APIError(
            409, "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."
        )

"""``Ci::JobArtifacts::DestroyBatchService``: deleting artifacts the way GitLab does, rows go, files wait.

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
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import DeletedObject, JobArtifact
from app.services.projects.statistics import increment_build_artifacts_size
from app.uploaders.job_artifact_uploader import store_dir_and_file

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

"""``Ci::JobArtifacts::DestroyBatchService``: deleting artifacts the way GitLab does, rows go, files wait.

In one transaction each artifact row becomes a ``Ci::DeletedObject`` (its store, directory,
file name and ``pick_up_at``), the rows are deleted and ``build_artifacts_size`` drops by
their sizes. The stored objects are left for ``Ci::DeleteObjectsService`` to remove once
``pick_up_at`` has passed, so a failure at any point loses no file and leaves no row
pointing at nothing. Set-based: one DELETE ... RETURNING and one multi-row INSERT a batch.
"""

from __future__ import annotations

import logging
import posixpath
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import feature, gitlab_version, metrics
from app.models import BuildArtifactsSizeRefresh, DeletedObject, FileType, JobArtifact, ProjectStatistics, RefreshState
from app.storage.paths import hashed_store_dir
from app.uploaders.job_artifact_uploader import store_dir_and_file

log = logging.getLogger("mockcoord.sidekiq")

PICK_UP_NOT_BEFORE = timedelta(days=1)  # ``pick_up_at`` is clamped to [now - 1 day, now + 1 hour]
PICK_UP_NOT_AFTER = timedelta(hours=1)
MAX_STATEMENT_IDS = 10_000  # bind parameters a statement (asyncpg's limit is 32,767)
# ``ci_detect_wrongly_expired_artifacts``: expiry dates a 13.x bug wrote, by day and time
WRONG_EXPIRY_DAYS = {21, 22, 23}
WRONG_EXPIRY_TIMES = {(0, 0, 0), (30, 0, 0), (45, 0, 0)}  # minute, second, millisecond


def pick_up_at(artifact: JobArtifact, given: datetime | None, now: datetime) -> datetime:
    """``to_deleted_object_attrs``: the given time, else the artifact's expiry, else now; clamped
    (16.3+; earlier releases kept a far expiry unclamped)."""
    when = given or artifact.expire_at or now
    if not gitlab_version.at_least(16, 3):
        return when
    return min(max(when, now - PICK_UP_NOT_BEFORE), now + PICK_UP_NOT_AFTER)


def deleted_object_location(artifact: JobArtifact) -> tuple[str, str]:
    """Where the DeletedObject says the file is. 16.1 and 16.2 (gitlab-org/gitlab#419920) built it
    from the uploader's hashed directory and the original name even for ``@final`` uploads: the
    removal then "succeeds" on a key that never existed and the object stays for good."""
    if artifact.file_final_path and gitlab_version.between((16, 1), (16, 2)):
        assert artifact.id is not None
        store_dir = hashed_store_dir(artifact.project_id, artifact.created_at, artifact.job_id, artifact.id)
        return store_dir, artifact.file or posixpath.basename(artifact.file_final_path)
    return store_dir_and_file(artifact)


def wrongly_expired(artifact: JobArtifact) -> bool:
    """The 15.x rule: traces, and expiry dates on the 21st-23rd at :00, :30 or :45 sharp."""
    if artifact.file_type == FileType.trace:
        return True
    at = artifact.expire_at
    if at is None:
        return False
    return at.day in WRONG_EXPIRY_DAYS and (at.minute, at.second, at.microsecond // 1000) in WRONG_EXPIRY_TIMES


async def refreshing_projects(session: AsyncSession, project_ids: set[int]) -> set[int]:
    rows = await session.exec(
        select(BuildArtifactsSizeRefresh.project_id).where(
            col(BuildArtifactsSizeRefresh.project_id).in_(project_ids),
            BuildArtifactsSizeRefresh.state != RefreshState.created,
        )
    )
    return set(rows.all())


async def _spare_wrongly_expired(session: AsyncSession, artifacts: list[JobArtifact]) -> list[JobArtifact]:
    """Up to 15.x with ``ci_detect_wrongly_expired_artifacts`` on: suspicious rows never expire
    instead of going (``Fixed expire_at from artifacts.``)."""
    if gitlab_version.at_least(16, 0) or not await feature.enabled(session, "ci_detect_wrongly_expired_artifacts"):
        return artifacts
    spared = {a.id for a in artifacts if wrongly_expired(a)}
    if not spared:
        return artifacts
    await session.exec(  # type: ignore[call-overload]
        update(JobArtifact).where(col(JobArtifact.id).in_(spared)).values(expire_at=None)
    )
    log.info('{"message": "Fixed expire_at from artifacts.", "fixed_artifacts_expire_at_count": %d}', len(spared))
    return [a for a in artifacts if a.id not in spared]


async def _decrement_statistics(session: AsyncSession, sizes: dict[int, int]) -> None:
    """``build_artifacts_size`` (and ``storage_size``) down by the batch's sizes: one statement for
    every project of the batch (executemany: one round trip, where one UPDATE a project cost one
    each), in project order, so that two batches never wait on each other crosswise."""
    stats = ProjectStatistics.__table__  # type: ignore[attr-defined]
    params = [{"project": project_id, "delta": -size} for project_id, size in sorted(sizes.items()) if size]
    if not params:
        return
    await session.exec(  # type: ignore[call-overload]
        update(stats)
        .where(stats.c.project_id == bindparam("project"))
        .values(
            build_artifacts_size=stats.c.build_artifacts_size + bindparam("delta"),
            storage_size=stats.c.storage_size + bindparam("delta"),
        ),
        params=params,
    )


async def destroy_batch(
    session: AsyncSession,
    artifacts: list[JobArtifact],
    given: datetime | None = None,
    *,
    skip_projects_on_refresh: bool = False,
    fix_expire_at: bool = True,
) -> int:
    """``DestroyBatchService#execute``; commits, returns how many artifacts went.

    ``skip_projects_on_refresh``: rows of projects whose usage is being recounted stay (the
    expiry worker's choice); otherwise GitLab only warns. ``fix_expire_at``: the 15.x
    wrongly-expired check (explicit deletions pass false). The rows are deleted first
    (``RETURNING``), so a concurrent deletion of the same artifacts records each object and
    each size once."""
    if skip_projects_on_refresh and artifacts:
        refreshing = await refreshing_projects(session, {a.project_id for a in artifacts})
        if refreshing:
            log.warning("Skipping projects undergoing stats refresh: project_ids=%s", sorted(refreshing))
            artifacts = [a for a in artifacts if a.project_id not in refreshing]
    if gitlab_version.between((15, 0), (16, 99)):  # those releases never destroyed traces here
        artifacts = [a for a in artifacts if a.file_type != FileType.trace]
    if fix_expire_at and artifacts:
        artifacts = await _spare_wrongly_expired(session, artifacts)
    if not artifacts:
        await session.commit()
        return 0
    gone_ids: set[int] = set()
    for first in range(0, len(artifacts), MAX_STATEMENT_IDS):
        ids = [a.id for a in artifacts[first : first + MAX_STATEMENT_IDS]]
        deleted = await session.exec(  # type: ignore[call-overload]
            delete(JobArtifact)
            .where(col(JobArtifact.id).in_(ids))
            .returning(JobArtifact.id)
            # the loaded rows are read afterwards, never expired: without this the ORM matches each
            # against the whole id list (quadratic: 3.4 s of a 10,000-row batch's 4.5 s)
            .execution_options(synchronize_session=False)
        )
        gone_ids.update(deleted.scalars().all())
    gone = [a for a in artifacts if a.id in gone_ids]
    now = clock.now()
    sizes: dict[int, int] = defaultdict(int)
    rows = []
    for artifact in gone:
        store_dir, file = deleted_object_location(artifact)
        rows.append(
            {
                "file_store": artifact.file_store,
                "pick_up_at": pick_up_at(artifact, given, now),
                "store_dir": store_dir,
                "file": file,
                "project_id": artifact.project_id,
            }
        )
        sizes[artifact.project_id] += artifact.size or 0
    if rows:
        await session.exec(insert(DeletedObject), params=rows)  # type: ignore[call-overload]
    await _decrement_statistics(session, sizes)
    await session.commit()
    metrics.destroyed_job_artifacts_count.inc(len(gone))
    metrics.destroyed_job_artifacts_bytes.inc(sum(sizes.values()))
    return len(gone)

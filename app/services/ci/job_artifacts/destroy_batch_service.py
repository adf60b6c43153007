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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import feature, gitlab_version, metrics
from app.models import DeletedObject, FileType, JobArtifact
from app.services.ci.job_artifacts.destroy_record import delete_rows
from app.services.projects import statistics
from app.storage.paths import hashed_store_dir
from app.uploaders.job_artifact_uploader import store_dir_and_file

log = logging.getLogger("mockcoord.sidekiq")

PICK_UP_NOT_BEFORE = timedelta(days=1)  # ``pick_up_at`` is clamped to [now - 1 day, now + 1 hour]
PICK_UP_NOT_AFTER = timedelta(hours=1)
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


@dataclass(frozen=True)
class DestroyResult:
    """``destroyed_artifacts_count``, ``destroyed_ids`` and, summed, the ``statistics_updates``."""

    count: int = 0
    bytes: int = 0
    ids: tuple[int, ...] = ()


async def destroy_batch(
    session: AsyncSession,
    artifacts: list[JobArtifact],
    given: datetime | None = None,
    *,
    skip_projects_on_refresh: bool = False,
    fix_expire_at: bool = True,
) -> int:
    """``DestroyBatchService#execute``; commits, returns how many artifacts went (``execute``
    answers what they were)."""
    result = await execute(
        session, artifacts, given, skip_projects_on_refresh=skip_projects_on_refresh, fix_expire_at=fix_expire_at
    )
    return result.count


async def execute(
    session: AsyncSession,
    artifacts: list[JobArtifact],
    given: datetime | None = None,
    *,
    skip_projects_on_refresh: bool = False,
    fix_expire_at: bool = True,
) -> DestroyResult:
    """``DestroyBatchService#execute``; commits.

    ``skip_projects_on_refresh``: rows of projects whose usage is being recounted stay (the
    expiry worker's choice); otherwise GitLab only warns. ``fix_expire_at``: the 15.x
    wrongly-expired check (explicit deletions pass false). The rows are deleted first
    (``RETURNING``), so a concurrent deletion of the same artifacts records each object and
    each size once."""
    if skip_projects_on_refresh and artifacts:
        refreshing = await statistics.refreshing(session, {a.project_id for a in artifacts})
        if refreshing:
            log.warning("Skipping projects undergoing stats refresh: project_ids=%s", sorted(refreshing))
            artifacts = [a for a in artifacts if a.project_id not in refreshing]
    if gitlab_version.between((15, 0), (16, 99)):  # those releases never destroyed traces here
        artifacts = [a for a in artifacts if a.file_type != FileType.trace]
    if fix_expire_at and artifacts:
        artifacts = await _spare_wrongly_expired(session, artifacts)
    if not artifacts:
        await session.commit()
        return DestroyResult()
    gone = await delete_rows(session, artifacts)
    now = clock.now()
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
    if rows:
        await session.exec(insert(DeletedObject), params=rows)  # type: ignore[call-overload]
    await session.commit()
    size = sum(a.size or 0 for a in gone)
    metrics.destroyed_job_artifacts_count.inc(len(gone))
    metrics.destroyed_job_artifacts_bytes.inc(size)
    return DestroyResult(len(gone), size, tuple(a.id for a in gone if a.id is not None))

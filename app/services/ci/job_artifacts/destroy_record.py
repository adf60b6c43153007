"""``Ci::JobArtifact#destroy!``: an artifact destroyed as a record, not through
``DestroyBatchService``.

What ``DestroyBatchService`` leaves behind still has to go when its job does: GitLab 15.x and
16.x's batch never took traces, and ``trace.erase!`` destroyed the trace artifact as a
record (the row and its usage in the transaction, the file removed after the commit by the
uploader). The same is done here, for erase and for a pipeline's destroy.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import JobArtifact
from app.services.projects.statistics import Increment, bulk_increment_projects
from app.state import AppState
from app.storage import StorageError
from app.uploaders.job_artifact_uploader import artifact_key

log = logging.getLogger("mockcoord.rails")


MAX_STATEMENT_IDS = 10_000  # bind parameters a statement (asyncpg's limit is 32,767)


async def delete_rows(session: AsyncSession, artifacts: list[JobArtifact]) -> list[JobArtifact]:
    """Deletes the rows (``RETURNING``) and lowers usage by the sizes of those it deleted, in the
    caller's transaction; answers those. A row another request deleted meanwhile is neither
    counted nor answered, so two deletions racing record each artifact once."""
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
    increments: dict[int, list[Increment]] = defaultdict(list)
    for artifact in gone:  # one Increment(-size, ref: id) an artifact (a stats refresh dedupes by it)
        increments[artifact.project_id].append(Increment(-(artifact.size or 0), artifact.id))
    await bulk_increment_projects(session, increments)
    return gone


async def destroy_records(session: AsyncSession, artifacts: list[JobArtifact]) -> list[str]:
    """``delete_rows`` (no commit); answers the keys of the files to remove once the caller has
    committed (``remove_files``)."""
    return [artifact_key(a) for a in await delete_rows(session, artifacts)]


async def remove_files(state: AppState, keys: list[str]) -> None:
    """The uploader's removal after the commit; a failure leaves the file where it is (logged),
    as CarrierWave's ``remove!`` would."""
    if not keys:
        return
    try:
        failed = await state.store.delete_many(keys)
    except StorageError as exc:
        log.warning("removing the files of destroyed artifacts failed: %s", exc)
        return
    if failed:
        log.warning("removing the files of destroyed artifacts failed: %s", ", ".join(failed))

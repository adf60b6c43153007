"""``Ci::ArchiveTraceService``: a finished job's live trace becomes its ``trace`` artifact
(``job.log``, raw) in the artifact store."""

from __future__ import annotations

import hashlib
import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib.ci_trace import archived, live_chunk
from app.models import Build, FileFormat, FileStore, FileType, JobArtifact, Pipeline
from app.services.projects.statistics import increment_build_artifacts_size
from app.state import AppState
from app.storage import StorageError
from app.uploaders.job_artifact_uploader import artifact_key

log = logging.getLogger("mockcoord.rails")


async def archive(state: AppState, session: AsyncSession, job: Build) -> JobArtifact | None:
    """The live trace becomes the ``trace`` artifact (``job.log``, raw) and the chunk goes.
    Nothing happens without a trace, or when the job already has one archived."""
    assert job.id is not None
    chunk = await live_chunk(session, job.id)
    if chunk is None:
        return None
    if await archived(session, job.id) is not None:
        await session.delete(chunk)
        await session.commit()
        return None
    data = bytes(chunk.raw_data)
    pipeline = await session.get(Pipeline, job.commit_id)
    now = clock.now()
    artifact = JobArtifact(
        project_id=job.project_id,
        job_id=job.id,  # type: ignore[arg-type]
        partition_id=job.partition_id,
        file_type=FileType.trace,
        file_format=FileFormat.raw,
        size=len(data),
        file_sha256=hashlib.sha256(data).hexdigest(),
        file="job.log",
        file_store=FileStore.REMOTE if state.store.remote else FileStore.LOCAL,
        locked=pipeline.locked if pipeline else 0,
        created_at=now,
        updated_at=now,
    )
    placed: list[str] = []
    try:
        session.add(artifact)
        await session.flush()
        await increment_build_artifacts_size(session, job.project_id, len(data), artifact.id)
        await session.delete(chunk)
        key = artifact_key(artifact)
        await state.store.put_bytes(key, data)
        placed.append(key)
        await session.commit()
    except StorageError as exc:
        # GitLab's worker would retry later; the live trace stays where it is.
        log.warning("archiving the trace of job %s failed: %s", job.id, exc)
        await session.rollback()
        await state.store.delete_many(placed)
        return None
    except BaseException:
        await session.rollback()
        await state.store.delete_many(placed)
        raise
    return artifact

"""Job traces: ``Ci::AppendBuildTraceService`` for live patches, ``Ci::UpdateBuildStateService``
for the final state, and the archive step (``Ci::ArchiveTraceService``) that turns the live
trace into the job's ``trace`` artifact (``job.log``, raw) in the artifact store."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import (
    Build,
    BuildStatus,
    BuildTraceChunk,
    FileFormat,
    FileStore,
    FileType,
    JobArtifact,
    Pipeline,
)
from app.presenters.build_runner_presenter import FAILURE_REASONS
from app.services.ci.atomic_processing_service import allowed_to_fail_with_code, process_pipeline
from app.services.projects.statistics import increment_build_artifacts_size
from app.state import AppState
from app.storage import StorageError, delete_all
from app.uploaders.job_artifact_uploader import artifact_key

log = logging.getLogger("mockcoord.rails")

UPDATE_INTERVAL = 30  # Gitlab::Ci::Trace::UPDATE_FREQUENCY_DEFAULT (3 s while someone watches)


@dataclass(frozen=True)
class AppendResult:
    status: int  # 202, or 416 when the patch does not start where the trace ends
    size: int  # the trace's size afterwards


def parse_range_start(content_range: str) -> int:
    """Ruby's ``"<start>-<end>".split('-')[0].to_i``: leading digits, else 0."""
    digits = ""
    for ch in content_range.split("-", 1)[0].strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def mask_token(data: bytes, token: str | None) -> bytes:
    """``Ci::Build#hide_secrets``: the job's own token becomes x's of the same length."""
    if not token:
        return data
    raw = token.encode()
    return data.replace(raw, b"x" * len(raw))


async def trace_size(session: AsyncSession, job_id: int) -> int:
    size = (
        await session.exec(select(func.length(BuildTraceChunk.raw_data)).where(BuildTraceChunk.build_id == job_id))
    ).first()
    return int(size or 0)


async def append(session: AsyncSession, job: Build, data: bytes, start: int) -> AppendResult:
    """Append when ``start`` is exactly the current size; otherwise nothing is written and the
    current size is returned with 416 (gaps and overlaps alike), so the runner resumes there.
    A rollback expires ``job``: only the plain values taken first are read afterwards."""
    job_id, partition_id = job.id, job.partition_id
    assert job_id is not None
    data = mask_token(data, job.token)
    for _ in range(3):
        query = select(BuildTraceChunk).where(BuildTraceChunk.build_id == job_id)
        chunk = (await session.exec(query.execution_options(populate_existing=True))).first()
        current = len(chunk.raw_data) if chunk is not None else 0
        if start != current:
            await session.rollback()
            return AppendResult(416, current)
        if not data:
            await session.rollback()
            return AppendResult(202, current)
        if chunk is None:
            session.add(BuildTraceChunk(build_id=job_id, partition_id=partition_id, raw_data=data))
            try:
                await session.commit()
            except IntegrityError:  # a concurrent first patch won; look again
                await session.rollback()
                continue
            return AppendResult(202, len(data))
        new = chunk.raw_data + data
        result = await session.exec(  # type: ignore[call-overload]
            update(BuildTraceChunk)
            .where(col(BuildTraceChunk.id) == chunk.id, func.length(BuildTraceChunk.raw_data) == current)
            .values(raw_data=new, lock_version=BuildTraceChunk.lock_version + 1)
        )
        await session.commit()
        if result.rowcount == 1:
            return AppendResult(202, len(new))
    return AppendResult(416, await trace_size(session, job_id))


@dataclass(frozen=True)
class StateUpdate:
    state: str
    failure_reason: str | None = None
    exit_code: int | None = None


async def update_state(state: AppState, session: AsyncSession, job: Build, update_: StateUpdate) -> int:
    """``UpdateBuildStateService#update_build_state!``: 200 for running/success/failed, else 400.
    A finished job moves its pipeline on (``PipelineProcessWorker``) and its trace is archived
    right away (GitLab does both in workers)."""
    now = clock.now()
    if update_.state == "running":
        return 200
    if update_.state in ("success", "failed") and job.status == BuildStatus.canceling:
        job.status = BuildStatus.canceled  # ``drop``/``succeed``: canceling -> canceled, whatever the runner says
    elif update_.state == "success":
        job.status = BuildStatus.success
        job.failure_reason = None
    elif update_.state == "failed":
        job.status = BuildStatus.failed
        reason = update_.failure_reason or "unknown_failure"
        job.failure_reason = reason if reason in FAILURE_REASONS else "unknown_failure"
        if allowed_to_fail_with_code(job, update_.exit_code):
            job.allow_failure = True  # Ci::Build#conditionally_allow_failure!
    else:
        return 400
    if update_.exit_code is not None:
        job.exit_code = update_.exit_code
    job.finished_at = now
    session.add(job)
    await session.commit()
    await process_pipeline(session, job.commit_id)
    await archive(state, session, job)
    return 200


async def live_chunk(session: AsyncSession, job_id: int) -> BuildTraceChunk | None:
    """The trace while the job runs (until it is archived)."""
    return (await session.exec(select(BuildTraceChunk).where(BuildTraceChunk.build_id == job_id))).first()


async def archived(session: AsyncSession, job_id: int) -> JobArtifact | None:
    """The job's ``trace`` artifact, once archived."""
    query = select(JobArtifact).where(JobArtifact.job_id == job_id, JobArtifact.file_type == FileType.trace)
    return (await session.exec(query)).first()


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
        await increment_build_artifacts_size(session, job.project_id, len(data))
        await session.delete(chunk)
        key = artifact_key(artifact)
        await state.store.put_bytes(key, data)
        placed.append(key)
        await session.commit()
    except StorageError as exc:
        # GitLab's worker would retry later; the live trace stays where it is.
        log.warning("archiving the trace of job %s failed: %s", job.id, exc)
        await session.rollback()
        await delete_all(state.store, placed)
        return None
    except BaseException:
        await session.rollback()
        await delete_all(state.store, placed)
        raise
    return artifact

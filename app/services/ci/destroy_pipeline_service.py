"""``Ci::DestroyPipelineService``: a pipeline and everything of it goes.

In GitLab's order: the pipeline is canceled synchronously (``execute_async: false``: its
running jobs stop and their logs are archived), then ``pipeline.destroy!``, whose fast
destroy sends the job artifacts through ``DestroyBatchService`` 100 at a time with
``pick_up_at: Time.current``, and whose cascade removes the jobs, their trace chunks,
variables and needs, the pipeline's variables and the pipeline.

Each artifact batch commits on its own (rows gone, ``ci_deleted_objects`` written, usage
lowered, together). The rows then go in one transaction that first locks the pipeline and
its jobs and checks that no artifact arrived meanwhile (a ``canceling`` job's runner may
still upload, or its log be archived); if one did, nothing is deleted and the artifacts go
first. What the batch service declined (15.x and 16.x's never took traces; 15.x's spared
"wrongly expired" rows) is destroyed as records in that transaction, their files removed
after it. So a failure leaves the pipeline's rows all there or all gone, and usage equal
to the artifacts that remain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import (
    Build,
    BuildNeed,
    BuildTraceChunk,
    JobArtifact,
    JobVariable,
    Pipeline,
    PipelineVariable,
)
from app.services.ci.cancel_pipeline_service import cancel_pipeline
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch
from app.services.ci.job_artifacts.destroy_record import destroy_records, remove_files
from app.state import AppState

BATCH_SIZE = 100  # Ci::JobArtifacts::DestroyAssociationsService::BATCH_SIZE
ROUNDS = 10  # artifact passes before giving up on a pipeline that keeps gaining artifacts

Identity = tuple[int | None, int, int, datetime]


class PipelineNotDestroyed(RuntimeError):
    """Artifacts kept arriving: the pipeline's rows are left whole."""


def _jobs_of(pipeline_id: int) -> Any:
    """The ids of the pipeline's jobs, retried ones included."""
    return select(Build.id).where(Build.commit_id == pipeline_id)


async def _artifact_batch(session: AsyncSession, pipeline_id: int, after: int) -> list[JobArtifact]:
    query = (
        select(JobArtifact)
        .where(col(JobArtifact.job_id).in_(_jobs_of(pipeline_id)), col(JobArtifact.id) > after)
        .order_by(col(JobArtifact.id))
        .limit(BATCH_SIZE)
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


def _identity(artifact: JobArtifact) -> Identity:
    """An artifact row as itself: SQLite may give a deleted row's id to a new one."""
    return artifact.id, artifact.job_id, artifact.file_type, artifact.created_at


async def _rows(session: AsyncSession, where: Any) -> list[JobArtifact]:
    query = select(JobArtifact).where(where).execution_options(populate_existing=True)
    return list((await session.exec(query)).all())


async def destroy_artifacts(session: AsyncSession, pipeline_id: int) -> set[Identity]:
    """Every artifact of the pipeline's jobs (retried ones too), trace included, 100 at a time
    in id order, each batch its own ``destroy_batch`` with ``pick_up_at`` now. Answers those
    it declined (still there after their batch)."""
    declined: set[Identity] = set()
    after = 0
    while batch := await _artifact_batch(session, pipeline_id, after):
        ids = [a.id for a in batch if a.id is not None]
        after = max(ids)
        await destroy_batch(session, batch, given=clock.now())
        declined.update(_identity(a) for a in await _rows(session, col(JobArtifact.id).in_(ids)))
    return declined


async def _delete_rows(session: AsyncSession, pipeline_id: int, declined: set[Identity]) -> list[str] | None:
    """The rows of the pipeline in one transaction, the artifacts ``destroy_batch`` declined
    among them (as records). Answers the files to remove now that it has committed; None
    (nothing deleted) when an artifact arrived that ``destroy_batch`` was never offered."""
    try:
        # The first write locks the pipeline (SQLite: the database) against processing and
        # new jobs; FOR UPDATE on the jobs holds off artifact and trace inserts (PostgreSQL).
        await session.exec(  # type: ignore[call-overload]
            update(Pipeline).where(col(Pipeline.id) == pipeline_id).values(updated_at=Pipeline.updated_at)
        )
        job_ids = list((await session.exec(_jobs_of(pipeline_id).with_for_update())).all())
        removed: list[str] = []
        if job_ids:
            left = await _rows(session, col(JobArtifact.job_id).in_(job_ids))
            if any(_identity(a) not in declined for a in left):
                await session.rollback()
                return None
            removed = await destroy_records(session, left)
            for model, column in (
                (BuildTraceChunk, BuildTraceChunk.build_id),
                (BuildNeed, BuildNeed.build_id),
                (JobVariable, JobVariable.job_id),
            ):
                await session.exec(delete(model).where(col(column).in_(job_ids)))  # type: ignore[call-overload]
            await session.exec(delete(Build).where(col(Build.id).in_(job_ids)))  # type: ignore[call-overload]
        await session.exec(delete(PipelineVariable).where(col(PipelineVariable.pipeline_id) == pipeline_id))  # type: ignore[call-overload]
        await session.exec(delete(Pipeline).where(col(Pipeline.id) == pipeline_id))  # type: ignore[call-overload]
        await session.commit()
        return removed
    except BaseException:
        await session.rollback()
        raise


async def destroy_pipeline(state: AppState, session: AsyncSession, pipeline: Pipeline) -> None:
    """``Ci::DestroyPipelineService#execute`` once the API has checked ``destroy_pipeline`` and
    the stats refresh."""
    pipeline_id = pipeline.id
    assert pipeline_id is not None
    await cancel_pipeline(state, session, pipeline)
    for _ in range(ROUNDS):
        declined = await destroy_artifacts(session, pipeline_id)
        removed = await _delete_rows(session, pipeline_id, declined)
        if removed is not None:
            await remove_files(state, removed)
            return
    raise PipelineNotDestroyed(f"pipeline {pipeline_id} kept gaining artifacts")

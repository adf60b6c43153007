"""``Ci::PipelineProcessing::AtomicProcessingService``: after any job changes, decide what
the pipeline's waiting (``created``) jobs do, then the pipeline's own status.

Stage by stage, each created job looks at the jobs before its stage (or, with ``needs:``,
only at the jobs it needs) as one ``Composite`` status; once that is complete the job
becomes ``pending`` (``queued_at``), ``manual``, or ``skipped``, as ``Ci::ProcessBuildService``
decides from its ``when``. Decisions made earlier in the pass count for later stages.

One pass holds the pipeline row's lock (the first statement writes it), so two runners
finishing jobs of one pipeline at once are processed one after the other, on SQLite and
PostgreSQL alike. GitLab runs this in ``PipelineProcessWorker``; here the request that
changed the job runs it after its own commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib.status_composite import Composite
from app.models import COMPLETED_STATUSES, Build, BuildNeed, BuildStatus, Pipeline, SchedulingType, latest
from app.services.ci.unlock_pipeline_service import UNLOCKABLE_STATUSES, unlock_previous_pipelines

BEFORE_RUNNING = {
    BuildStatus.created,
    BuildStatus.waiting_for_resource,
    BuildStatus.preparing,
    BuildStatus.pending,
}
FINISHED = {BuildStatus.success, BuildStatus.failed, BuildStatus.canceled}


def valid_statuses(job: Build) -> set[str]:
    """``Ci::ProcessBuildService#valid_statuses_for_processable``."""
    if job.when in ("on_success", "manual", "delayed"):
        return {"success"} if job.scheduling_type == SchedulingType.dag else {"success", "skipped"}
    if job.when == "on_failure":
        return {"failed"}
    if job.when == "always":
        return {"success", "failed", "skipped"}
    return set()


def allowed_to_fail_with_code(job: Build, exit_code: int | None) -> bool:
    """``Ci::Build#allowed_to_fail_with_code?``: ``allow_failure: {exit_codes: [...]}``."""
    criteria = (job.options or {}).get("allow_failure_criteria") or {}
    return exit_code is not None and exit_code in (criteria.get("exit_codes") or [])


def duration(jobs: Sequence[Build], now: datetime) -> int | None:
    """``Gitlab::Ci::Pipeline::Duration``: the time some job was running, overlaps once."""
    periods = sorted((j.started_at, j.finished_at or now) for j in jobs if j.started_at is not None)
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for start, end in periods:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            total += (current[1] - current[0]).total_seconds()
        current = (start, end)
    if current is None:
        return None
    return int(total + (current[1] - current[0]).total_seconds())


def _decide(job: Build, jobs: Sequence[Build], needs: dict[int, list[str]]) -> str | None:
    """What a created job becomes now, or None while what it waits for is not complete."""
    if job.scheduling_type == SchedulingType.dag:
        names = set(needs.get(job.id, []))  # type: ignore[arg-type]
        prior = Composite([(j.status, j.allow_failure) for j in jobs if j.name in names], dag=True).status
    else:
        prior = Composite([(j.status, j.allow_failure) for j in jobs if j.stage_idx < job.stage_idx]).status
    prior = prior or "success"  # nothing to wait for
    if prior not in COMPLETED_STATUSES:
        return None
    if prior not in valid_statuses(job):
        return BuildStatus.skipped
    return BuildStatus.manual if job.when == "manual" else BuildStatus.pending


async def process_pipeline(session: AsyncSession, pipeline_id: int) -> Pipeline | None:
    """One processing pass; commits. The pipeline afterwards (None if it is gone)."""
    lock = update(Pipeline).where(col(Pipeline.id) == pipeline_id).values(updated_at=Pipeline.updated_at)
    await session.exec(lock)  # type: ignore[call-overload]
    pipeline = await session.get(Pipeline, pipeline_id, populate_existing=True)
    if pipeline is None:
        await session.rollback()
        return None
    query = select(Build).where(Build.commit_id == pipeline_id, latest()).order_by(col(Build.stage_idx), col(Build.id))
    jobs = list((await session.exec(query.execution_options(populate_existing=True))).all())
    needs: dict[int, list[str]] = {}
    dag_ids = [j.id for j in jobs if j.scheduling_type == SchedulingType.dag]
    if dag_ids:
        for need in (await session.exec(select(BuildNeed).where(col(BuildNeed.build_id).in_(dag_ids)))).all():
            needs.setdefault(need.build_id, []).append(need.name)
    now = clock.now()
    for job in jobs:
        if job.status != BuildStatus.created:
            continue
        decided = _decide(job, jobs, needs)
        if decided is None:
            continue
        job.status = decided
        if decided == BuildStatus.pending:
            job.queued_at = now
        session.add(job)
    await _update_status(session, pipeline, jobs, now)
    await session.commit()
    return pipeline


async def _update_status(session: AsyncSession, pipeline: Pipeline, jobs: Sequence[Build], now: datetime) -> None:
    """``Ci::Pipeline#set_status`` and the state machine's callbacks."""
    status = Composite([(j.status, j.allow_failure) for j in jobs]).status
    if status is None or status == pipeline.status:
        return
    if status == BuildStatus.running and pipeline.status in BEFORE_RUNNING:
        pipeline.started_at = now
    if status in FINISHED:
        pipeline.finished_at = now
    if status in FINISHED or status == BuildStatus.manual:
        pipeline.duration = duration(jobs, now)
    pipeline.status = status
    pipeline.updated_at = now
    session.add(pipeline)
    if status in UNLOCKABLE_STATUSES:
        await session.flush()
        await unlock_previous_pipelines(session, pipeline)

"""What a user does to jobs and pipelines: cancel, retry, play (``Ci::Build`` state machine events,
``Ci::RetryJobService``, ``Ci::PlayBuildService``, ``Ci::CancelPipelineService``,
``Ci::RetryPipelineService``, ``Ci::ResetSkippedJobsService``).

Every status change is a conditional UPDATE on the status it starts from, so a runner claiming
or finishing the job at the same moment never has its change overwritten; the pipeline is
processed afterwards, as GitLab's ``PipelineProcessWorker`` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import Build, BuildNeed, BuildStatus, JobVariable, Pipeline, Runner, SchedulingType, latest
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.traces import archive
from app.state import AppState

# ``Ci::HasStatus::CANCELABLE_STATUSES``; ``cancel`` also takes ``manual`` jobs.
CANCELABLE = (
    BuildStatus.running,
    BuildStatus.waiting_for_resource,
    BuildStatus.waiting_for_callback,
    BuildStatus.preparing,
    BuildStatus.pending,
    BuildStatus.created,
    BuildStatus.scheduled,
)
RETRYABLE = (BuildStatus.success, BuildStatus.failed, BuildStatus.canceled)
ACTIONS = ("manual", "delayed")  # ``Ci::Processable#action?`` by ``when``


@dataclass(frozen=True)
class PlayVariable:
    key: str
    value: str


async def _transition(session: AsyncSession, job: Build, sources: Iterable[str], **values: object) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        update(Build).where(col(Build.id) == job.id, col(Build.status).in_(list(sources))).values(**values)
    )
    await session.commit()
    return result.rowcount == 1


async def _refreshed(session: AsyncSession, job: Build) -> Build:
    fresh = await session.get(Build, job.id, populate_existing=True)
    assert fresh is not None
    return fresh


async def _cancels_gracefully(session: AsyncSession, job: Build) -> bool:
    """``supports_canceling?``: the job's runner said ``cancel_gracefully`` (it then runs
    ``after_script`` and reports back, and the job stays ``canceling`` until it does)."""
    runner = await session.get(Runner, job.runner_id) if job.runner_id is not None else None
    return bool(runner and (runner.runtime_features or {}).get("cancel_gracefully"))


async def _cancel_one(session: AsyncSession, job: Build, *, force: bool) -> bool:
    now = clock.now()
    if force:
        return await _transition(session, job, [BuildStatus.canceling], status=BuildStatus.canceled, finished_at=now)
    if job.status == BuildStatus.running and await _cancels_gracefully(session, job):
        return await _transition(session, job, [BuildStatus.running], status=BuildStatus.canceling)
    sources = [*CANCELABLE, BuildStatus.manual]
    return await _transition(session, job, sources, status=BuildStatus.canceled, finished_at=now)


async def _after_cancel(state: AppState, session: AsyncSession, pipeline_id: int, jobs: Sequence[Build]) -> None:
    """One processing pass once every job is canceled (so later jobs are canceled, not skipped),
    then the logs of the jobs that stopped are archived."""
    await process_pipeline(session, pipeline_id)
    for job in jobs:
        job = await _refreshed(session, job)
        if job.status == BuildStatus.canceled:
            await archive(state, session, job)


async def cancel(state: AppState, session: AsyncSession, job: Build, *, force: bool = False) -> Build:
    """``cancel`` (or ``force_cancel``): running -> canceling when the runner cancels gracefully,
    any cancelable status -> canceled; anything else is left as it is (GitLab answers 201 anyway)."""
    if await _cancel_one(session, job, force=force):
        await _after_cancel(state, session, job.commit_id, [job])
    return await _refreshed(session, job)


def retryable(job: Build) -> bool:
    """``Ci::Build#retryable?``."""
    return not job.retried and job.erased_at is None and job.status in RETRYABLE


def playable(job: Build) -> bool:
    """``Ci::Build#playable?``: an action job waiting for its play, or finished (played again = retried)."""
    return job.when in ACTIONS and (job.status in (BuildStatus.manual, BuildStatus.scheduled) or retryable(job))


async def _clone(session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable]) -> Build:
    """``Ci::RetryJobService#clone!``: the same job definition, a new id and token, the old one retried."""
    clone = Build(
        project_id=job.project_id,
        commit_id=job.commit_id,
        name=job.name,
        stage=job.stage,
        stage_idx=job.stage_idx,
        status=BuildStatus.created,
        user_id=user_id,
        ref=job.ref,
        tag=job.tag,
        when=job.when,
        allow_failure=job.allow_failure,
        options=job.options,
        partition_id=job.partition_id,
        scheduling_type=job.scheduling_type,
    )
    session.add(clone)
    await session.flush()
    for need in (await session.exec(select(BuildNeed).where(BuildNeed.build_id == job.id))).all():
        session.add(BuildNeed(build_id=clone.id, name=need.name, artifacts=need.artifacts, optional=need.optional))  # type: ignore[arg-type]
    kept = variables or [
        PlayVariable(v.key, v.value)
        for v in (await session.exec(select(JobVariable).where(JobVariable.job_id == job.id))).all()
    ]
    for variable in kept:
        session.add(JobVariable(job_id=clone.id, key=variable.key, value=variable.value))  # type: ignore[arg-type]
    job.retried = True
    session.add(job)
    return clone


async def _reset_skipped(session: AsyncSession, pipeline_id: int, retried: Sequence[Build]) -> None:
    """``Ci::ResetSkippedJobsService``: skipped jobs after the retried ones (later stages, or
    needing them) go back to ``created`` so processing decides them again."""
    skipped = (
        await session.exec(
            select(Build).where(Build.commit_id == pipeline_id, Build.status == BuildStatus.skipped, latest())
        )
    ).all()
    if not skipped:
        return
    dag = [j.id for j in skipped if j.scheduling_type == SchedulingType.dag]
    needs: dict[int, set[str]] = {}
    if dag:
        for need in (await session.exec(select(BuildNeed).where(col(BuildNeed.build_id).in_(dag)))).all():
            needs.setdefault(need.build_id, set()).add(need.name)
    first_stage = min(j.stage_idx for j in retried)
    names = {j.name for j in retried}
    for job in skipped:
        after = bool(needs.get(job.id, set()) & names) if job.id in needs else job.stage_idx > first_stage  # type: ignore[arg-type]
        if after:
            job.status = BuildStatus.created
            session.add(job)


async def retry(
    session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable] = ()
) -> Build:
    """``Ci::RetryJobService#execute``: the clone waits for processing, except an action job,
    which is enqueued at once (``enqueue_if_actionable``)."""
    clone = await _clone(session, job, user_id, variables)
    if job.when in ACTIONS:
        clone.status, clone.queued_at = BuildStatus.pending, clock.now()
    await _reset_skipped(session, job.commit_id, [job])
    await session.commit()
    await process_pipeline(session, job.commit_id)
    return await _refreshed(session, clone)


async def play(session: AsyncSession, job: Build, user_id: int | None, variables: Sequence[PlayVariable]) -> Build:
    """``Ci::PlayBuildService``: a manual job is enqueued with the player as its user and the
    variables given; a finished one is retried."""
    if job.status not in (BuildStatus.manual, BuildStatus.scheduled):
        return await retry(session, job, user_id, variables)
    for variable in variables:
        session.add(JobVariable(job_id=job.id, key=variable.key, value=variable.value))  # type: ignore[arg-type]
    await session.flush()
    values = {"status": BuildStatus.pending, "queued_at": clock.now(), "user_id": user_id}
    if not await _transition(session, job, [BuildStatus.manual, BuildStatus.scheduled], **values):
        return await _refreshed(session, job)  # someone else played or canceled it first
    await process_pipeline(session, job.commit_id)
    return await _refreshed(session, job)


async def _latest_jobs(session: AsyncSession, pipeline: Pipeline) -> list[Build]:
    query = select(Build).where(Build.commit_id == pipeline.id, latest()).order_by(col(Build.stage_idx), col(Build.id))
    return list((await session.exec(query)).all())


async def cancel_pipeline(state: AppState, session: AsyncSession, pipeline: Pipeline) -> None:
    """``Ci::CancelPipelineService``: every cancelable job of the pipeline."""
    assert pipeline.id is not None
    stopped = [
        job
        for job in await _latest_jobs(session, pipeline)
        if job.status in (*CANCELABLE, BuildStatus.manual) and await _cancel_one(session, job, force=False)
    ]
    if stopped:
        await _after_cancel(state, session, pipeline.id, stopped)


async def retry_pipeline(session: AsyncSession, pipeline: Pipeline, user_id: int | None) -> None:
    """``Ci::RetryPipelineService``: every failed or canceled job again (action jobs wait for a
    play again), then the skipped ones after them."""
    failed = [
        j for j in await _latest_jobs(session, pipeline) if j.status in (BuildStatus.failed, BuildStatus.canceled)
    ]
    if not failed:
        return
    for job in failed:
        await _clone(session, job, user_id, ())
    await _reset_skipped(session, pipeline.id, failed)  # type: ignore[arg-type]
    await session.commit()
    await process_pipeline(session, pipeline.id)  # type: ignore[arg-type]

"""``Ci::BuildCancelService``: cancel (or force-cancel) one job; the pipeline is processed
afterwards, as GitLab's ``PipelineProcessWorker`` would."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import Build, BuildStatus, Runner
from app.services.ci.archive_trace_service import archive
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.build_state import CANCELABLE, refreshed, transition
from app.state import AppState


async def cancels_gracefully(session: AsyncSession, job: Build) -> bool:
    """``supports_canceling?``: the job's runner said ``cancel_gracefully`` (it then runs
    ``after_script`` and reports back, and the job stays ``canceling`` until it does)."""
    runner = await session.get(Runner, job.runner_id) if job.runner_id is not None else None
    return bool(runner and (runner.runtime_features or {}).get("cancel_gracefully"))


async def cancel_one(session: AsyncSession, job: Build, *, force: bool) -> bool:
    now = clock.now()
    if force:
        return await transition(session, job, [BuildStatus.canceling], status=BuildStatus.canceled, finished_at=now)
    if job.status == BuildStatus.running and await cancels_gracefully(session, job):
        return await transition(session, job, [BuildStatus.running], status=BuildStatus.canceling)
    sources = [*CANCELABLE, BuildStatus.manual]
    return await transition(session, job, sources, status=BuildStatus.canceled, finished_at=now)


async def after_cancel(state: AppState, session: AsyncSession, pipeline_id: int, jobs: Sequence[Build]) -> None:
    """One processing pass once every job is canceled (so later jobs are canceled, not skipped),
    then the logs of the jobs that stopped are archived."""
    await process_pipeline(session, pipeline_id)
    for job in jobs:
        job = await refreshed(session, job)
        if job.status == BuildStatus.canceled:
            await archive(state, session, job)


async def cancel(state: AppState, session: AsyncSession, job: Build, *, force: bool = False) -> Build:
    """``cancel`` (or ``force_cancel``): running -> canceling when the runner cancels gracefully,
    any cancelable status -> canceled; anything else is left as it is (GitLab answers 201 anyway)."""
    if await cancel_one(session, job, force=force):
        await after_cancel(state, session, job.commit_id, [job])
    return await refreshed(session, job)

"""``Ci::UpdateBuildStateService``: a runner's final ``PUT /jobs/:id`` (success or failure, with
its reason and exit code); the pipeline moves on and the trace is archived."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import Build, BuildStatus
from app.presenters.build_runner_presenter import FAILURE_REASONS
from app.services.ci.archive_trace_service import archive
from app.services.ci.atomic_processing_service import allowed_to_fail_with_code, process_pipeline
from app.state import AppState


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

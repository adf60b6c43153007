"""``Ci::RegisterJobService``: hand the oldest pending job a runner may take to that runner.

Two runners never get the same job: the job is claimed by one conditional ``UPDATE ...
WHERE status = 'pending'`` and only the request whose update touched the row has it
(SQLite serialises writers; PostgreSQL re-checks the condition after the row lock).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import tokens
from app.models import Build, BuildStatus, Pipeline, Project, Runner, RunnerType
from app.services.ci.atomic_processing_service import process_pipeline

CANDIDATES = 500
BATCH = 25


def job_tags(job: Build) -> list[str]:
    tags = (job.options or {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else [str(tags)]


def can_pick(runner: Runner, job: Build) -> bool:
    """``Ci::Runner#can_pick?`` on tags: every job tag among the runner's; untagged jobs only
    for runners with ``run_untagged``; project runners only their own project's jobs."""
    if runner.runner_type == RunnerType.project_type and runner.project_id and job.project_id != runner.project_id:
        return False
    tags = job_tags(job)
    if not tags:
        return runner.run_untagged
    return set(tags) <= set(runner.tag_list or [])


async def queue_value(session: AsyncSession, runner: Runner) -> str:
    """What ``X-GitLab-Last-Update`` carries: GitLab keeps a random value per runner in Redis and
    changes it when a job is queued for it; here it is derived from the set of pending jobs
    and the runner's own settings, so it changes whenever either does."""
    row = (
        await session.exec(
            select(func.count(col(Build.id)), func.max(Build.id), func.sum(Build.id)).where(
                Build.status == BuildStatus.pending
            )
        )
    ).one()
    seed = f"{runner.id}|{runner.active}|{runner.run_untagged}|{sorted(runner.tag_list or [])}|{tuple(row)}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


async def assign(session: AsyncSession, runner: Runner) -> Build | None:
    """Claim the first job the runner can pick: oldest pipeline first, then the lowest stage,
    then the oldest job. The job becomes ``running`` with this runner, a start time and a token.
    Candidates are read a batch at a time (up to ``CANDIDATES``): the first batch nearly
    always holds the job, and a long queue is not loaded whole on every request."""
    query: Any = (
        select(Build)
        .join(Project, col(Project.id) == col(Build.project_id))
        .where(Build.status == BuildStatus.pending, col(Project.pending_delete).is_(False))
        .order_by(col(Build.commit_id), col(Build.stage_idx), col(Build.id))
    )
    for offset in range(0, CANDIDATES, BATCH):
        batch = list((await session.exec(query.offset(offset).limit(BATCH))).all())
        await session.commit()  # no snapshot held while claiming (SQLite WAL would refuse the upgrade)
        for job in batch:
            if can_pick(runner, job) and await _claim(session, runner, job):
                claimed = await session.get(Build, job.id, populate_existing=True)
                assert claimed is not None
                return claimed
        if len(batch) < BATCH:
            break
    return None


async def _claim(session: AsyncSession, runner: Runner, job: Build) -> bool:
    """The conditional UPDATE: only one request's touches the row."""
    result = await session.exec(  # type: ignore[call-overload]
        update(Build)
        .where(col(Build.id) == job.id, col(Build.status) == BuildStatus.pending)
        .values(
            status=BuildStatus.running,
            runner_id=runner.id,
            started_at=clock.now(),
            token=job.token or tokens.job_token(),
        )
    )
    await session.commit()
    if result.rowcount != 1:
        return False
    # A job starting changes nothing but the pipeline's status, and only the first time.
    status = (await session.exec(select(Pipeline.status).where(Pipeline.id == job.commit_id))).first()
    if status != BuildStatus.running:
        await process_pipeline(session, job.commit_id)
    return True

"""The page's "Delete old pipelines for a project" / "... instance-wide"::

    user = User.find(1)
    project.ci_pipelines.where("finished_at < ?", 1.year.ago).each_batch do |batch|   # or Ci::Pipeline
      batch.each do |pipeline|
        puts "Erasing pipeline #{pipeline.id}"           # instance-wide: "... for project #{pipeline.project_id}"
        Ci::DestroyPipelineService.new(pipeline.project, user).execute(pipeline)
      end
    end

``Ci::DestroyPipelineService`` needs ``destroy_pipeline`` (the project's owners, admins): for a
user without it GitLab raises ``Gitlab::Access::AccessDeniedError`` and the snippet stops there.
Every artifact of the pipeline's jobs (logs included) goes through ``DestroyBatchService``, picked
up at once; then the jobs and the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Build, JobArtifact, Pipeline, Project, User
from app.policies.project_policy import can_destroy_pipeline, reader_for
from app.services.admin.each_batch import BATCH_SIZE, each_batch, in_range
from app.services.ci.destroy_pipeline_service import destroy_pipeline
from app.state import AppState


class AccessDeniedError(PermissionError):
    """``Gitlab::Access::AccessDeniedError``: the user may not destroy the pipeline."""


def relation(finished_before: datetime, project_id: int | None) -> list[Any]:
    where = [col(Pipeline.finished_at) < finished_before]
    if project_id is not None:
        where.append(Pipeline.project_id == project_id)
    return where


@dataclass(frozen=True)
class Plan:
    pipelines: int
    jobs: int
    artifacts: int
    bytes: int


@dataclass(frozen=True)
class PipelineOutcome:
    pipeline_id: int
    project_id: int
    jobs: int
    artifacts: int
    bytes: int

    def line(self, instance_wide: bool) -> str:
        return f"Erasing pipeline {self.pipeline_id}" + (f" for project {self.project_id}" if instance_wide else "")


async def plan(session: AsyncSession, finished_before: datetime, project_id: int | None) -> Plan:
    pipelines = select(Pipeline.id).where(*relation(finished_before, project_id))
    n = (await session.exec(select(func.count()).select_from(pipelines.subquery()))).one()
    jobs = select(Build.id).where(col(Build.commit_id).in_(pipelines))
    n_jobs = (await session.exec(select(func.count()).select_from(jobs.subquery()))).one()
    count, size = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(JobArtifact.size), 0)).where(col(JobArtifact.job_id).in_(jobs))
        )
    ).one()
    return Plan(int(n), int(n_jobs), int(count), int(size))


async def _contents(session: AsyncSession, pipeline_id: int) -> tuple[int, int, int]:
    jobs = select(Build.id).where(Build.commit_id == pipeline_id)
    n_jobs = (await session.exec(select(func.count()).select_from(jobs.subquery()))).one()
    count, size = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(JobArtifact.size), 0)).where(col(JobArtifact.job_id).in_(jobs))
        )
    ).one()
    return int(n_jobs), int(count), int(size)


async def run(
    state: AppState,
    finished_before: datetime,
    project_id: int | None,
    user: User,
    *,
    dry_run: bool,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[PipelineOutcome]:
    """Each pipeline as the snippet destroys it (``dry_run``: what it holds, nothing changed).
    ``AccessDeniedError`` where the user may not destroy a pipeline."""
    where = relation(finished_before, project_id)
    handled = 0
    allowed: dict[int, bool] = {}
    async with state.db.session() as session:
        async for start, stop in each_batch(session, Pipeline, where, batch_size):
            batch = select(Pipeline).where(*where, *in_range(Pipeline, start, stop)).order_by(col(Pipeline.id))
            pipelines = list((await session.exec(batch)).all())
            if limit is not None:
                pipelines = pipelines[: max(limit - handled, 0)]
            for pipeline in pipelines:
                assert pipeline.id is not None
                if pipeline.project_id not in allowed:
                    project = await session.get(Project, pipeline.project_id)
                    reader = await reader_for(session, user, project) if project else None
                    allowed[pipeline.project_id] = reader is not None and can_destroy_pipeline(reader)
                if not allowed[pipeline.project_id]:
                    raise AccessDeniedError(
                        f"{user.username} may not destroy pipeline {pipeline.id} (project {pipeline.project_id})"
                    )
                outcome = PipelineOutcome(pipeline.id, pipeline.project_id, *await _contents(session, pipeline.id))
                if not dry_run:
                    await destroy_pipeline(state, session, pipeline)
                yield outcome
            handled += len(pipelines)
            if limit is not None and handled >= limit:
                return

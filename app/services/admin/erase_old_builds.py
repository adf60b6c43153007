"""The page's "Delete old job logs and artifacts for a project" / "... instance wide"::

    builds = project.builds                                   # or Ci::Build.all
    admin_user = User.find_by(username: 'username')
    builds.where("finished_at < ?", 1.year.ago).each_batch do |batch|
      batch.each do |build|
        print "Ci::Build ID #{build.id}... "
        if build.erasable?
          Ci::BuildEraseService.new(build, admin_user).execute
          puts "Erased"
        else
          puts "Skipped (Nothing to erase or not erasable)"
        end
      end
    end

``Ci::BuildEraseService`` destroys every artifact of the job, its log included, erases the live
trace and marks the job erased by the user (``erased_by``, ``erased_at``); a stats refresh of the
project does not stop it (GitLab only logs a warning).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.finders.project_finder import full_paths
from app.models import COMPLETED_STATUSES, Build, BuildTraceChunk, JobArtifact
from app.services.admin.each_batch import BATCH_SIZE, each_batch, in_range
from app.services.ci import build_erase_service
from app.state import AppState

ERASED = "Erased"
SKIPPED = "Skipped (Nothing to erase or not erasable)"


def relation(finished_before: datetime, project_id: int | None) -> list[Any]:
    """``(project.builds | Ci::Build.all).where("finished_at < ?", t)``."""
    where = [col(Build.finished_at) < finished_before]
    if project_id is not None:
        where.append(Build.project_id == project_id)
    return where


def erasable_clause() -> Any:
    """``erasable?`` in SQL: complete, with an artifact row or a live trace."""
    return and_(
        col(Build.status).in_([s.value for s in COMPLETED_STATUSES]),
        or_(exists().where(JobArtifact.job_id == Build.id), exists().where(BuildTraceChunk.build_id == Build.id)),
    )


@dataclass(frozen=True)
class Plan:
    jobs: int  # every job the snippet walks
    erasable_jobs: int
    artifacts: int  # all their artifacts, logs included
    bytes: int


@dataclass(frozen=True)
class JobOutcome:
    build_id: int
    project_id: int
    full_path: str
    erased: bool
    artifacts: int
    bytes: int

    @property
    def line(self) -> str:
        """What the snippet prints for the job."""
        return f"Ci::Build ID {self.build_id}... {ERASED if self.erased else SKIPPED}"


async def plan(session: AsyncSession, finished_before: datetime, project_id: int | None) -> Plan:
    where = relation(finished_before, project_id)
    jobs = (await session.exec(select(func.count()).select_from(select(Build.id).where(*where).subquery()))).one()
    erasable_jobs = select(Build.id).where(*where, erasable_clause())
    n_erasable = (await session.exec(select(func.count()).select_from(erasable_jobs.subquery()))).one()
    count, size = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(JobArtifact.size), 0)).where(
                col(JobArtifact.job_id).in_(erasable_jobs)
            )
        )
    ).one()
    return Plan(int(jobs), int(n_erasable), int(count), int(size))


async def _artifacts_by_job(session: AsyncSession, job_ids: list[int]) -> dict[int, tuple[int, int]]:
    rows = await session.exec(
        select(JobArtifact.job_id, func.count(), func.coalesce(func.sum(JobArtifact.size), 0))
        .where(col(JobArtifact.job_id).in_(job_ids))
        .group_by(col(JobArtifact.job_id))
    )
    return {job_id: (int(n), int(size)) for job_id, n, size in rows.all()}


async def run(
    state: AppState,
    finished_before: datetime,
    project_id: int | None,
    user_id: int,
    *,
    dry_run: bool,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[JobOutcome]:
    """Each job as the snippet handles it (``dry_run``: what would happen, nothing changed)."""
    where = relation(finished_before, project_id)
    handled = 0
    async with state.db.session() as session:
        async for start, stop in each_batch(session, Build, where, batch_size):
            batch = select(Build).where(*where, *in_range(Build, start, stop)).order_by(col(Build.id))
            builds = list((await session.exec(batch)).all())
            if limit is not None:
                builds = builds[: max(limit - handled, 0)]
            paths = await full_paths(session, {b.project_id for b in builds})
            for build in builds:
                assert build.id is not None
                path = paths.get(build.project_id, "")
                if not await build_erase_service.erasable(session, build):
                    yield JobOutcome(build.id, build.project_id, path, False, 0, 0)
                    continue
                n, size = (await _artifacts_by_job(session, [build.id])).get(build.id, (0, 0))
                if not dry_run:
                    await build_erase_service.erase(state, session, build, user_id)
                yield JobOutcome(build.id, build.project_id, path, True, n, size)
            handled += len(builds)
            if limit is not None and handled >= limit:
                return

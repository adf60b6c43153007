"""The page's "Delete old artifacts for a project" / "... instance wide"::

    builds_with_artifacts = project.builds.with_downloadable_artifacts   # or Ci::Build
    builds_with_artifacts.where("finished_at < ?", 1.year.ago).each_batch do |batch|
      batch.each do |build|
        Ci::JobArtifacts::DeleteService.new(build).execute
      end
      batch.update_all(artifacts_expire_at: Time.current)
    end

Kept artifacts (no expiry) and locked ones go too: ``DeleteService`` asks neither. Each job's
erasable artifacts (all but the log) go through ``DestroyBatchService``; a project whose usage is
being recounted keeps them (the service's error). ``batch.update_all`` runs the batch's query
again after the deletions, so it sets ``artifacts_expire_at`` only on the batch's jobs that still
have downloadable artifacts (those of refreshing projects): the jobs emptied no longer match.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.finders.builds_finder import with_downloadable_artifacts
from app.finders.project_finder import full_paths
from app.models import Build, BuildArtifactsSizeRefresh, JobArtifact, RefreshState
from app.services.admin.each_batch import BATCH_SIZE, each_batch, in_range
from app.services.ci.job_artifacts import delete_service
from app.services.ci.job_artifacts.delete_service import NON_ERASABLE_FILE_TYPES
from app.state import AppState


def relation(finished_before: datetime, project_id: int | None) -> list[Any]:
    """``(project.builds | Ci::Build).with_downloadable_artifacts.where("finished_at < ?", t)``."""
    where = [with_downloadable_artifacts(), col(Build.finished_at) < finished_before]
    if project_id is not None:
        where.append(Build.project_id == project_id)
    return where


@dataclass(frozen=True)
class Plan:
    """What a run would do: jobs, their erasable artifacts and bytes; those of projects under a
    stats refresh are refused."""

    jobs: int
    artifacts: int
    bytes: int
    refused_jobs: int


@dataclass(frozen=True)
class JobOutcome:
    build_id: int
    project_id: int
    full_path: str
    artifacts: int
    bytes: int
    error: str | None = None  # DeleteService's error (stats refresh): nothing deleted


@dataclass(frozen=True)
class BatchDone:
    index: int
    jobs: int
    expire_at_set: int  # rows ``batch.update_all`` changed


def _refreshing() -> Any:
    return select(BuildArtifactsSizeRefresh.project_id).where(BuildArtifactsSizeRefresh.state != RefreshState.created)


async def plan(session: AsyncSession, finished_before: datetime, project_id: int | None) -> Plan:
    """Totals in three aggregate queries, without walking the jobs."""
    where = relation(finished_before, project_id)
    jobs = select(Build.id).where(*where)
    job_count = (await session.exec(select(func.count()).select_from(jobs.subquery()))).one()
    erasable = [col(JobArtifact.job_id).in_(jobs), col(JobArtifact.file_type).not_in(NON_ERASABLE_FILE_TYPES)]
    live = [*erasable, col(JobArtifact.project_id).not_in(_refreshing())]
    count, size = (
        await session.exec(select(func.count(), func.coalesce(func.sum(JobArtifact.size), 0)).where(*live))
    ).one()
    refused = select(Build.id).where(*where, col(Build.project_id).in_(_refreshing()))
    refused_count = (await session.exec(select(func.count()).select_from(refused.subquery()))).one()
    return Plan(int(job_count), int(count), int(size), int(refused_count))


async def _erasable_by_job(session: AsyncSession, job_ids: list[int]) -> dict[int, tuple[int, int]]:
    rows = await session.exec(
        select(JobArtifact.job_id, func.count(), func.coalesce(func.sum(JobArtifact.size), 0))
        .where(col(JobArtifact.job_id).in_(job_ids), col(JobArtifact.file_type).not_in(NON_ERASABLE_FILE_TYPES))
        .group_by(col(JobArtifact.job_id))
    )
    return {job_id: (int(n), int(size)) for job_id, n, size in rows.all()}


async def run(
    state: AppState,
    finished_before: datetime,
    project_id: int | None,
    *,
    dry_run: bool,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[JobOutcome | BatchDone]:
    """Each job as it is handled, then each batch's ``update_all``. ``dry_run``: the same walk,
    what each job would lose, nothing changed. ``limit``: stop after that many jobs (the page's
    snippet has none)."""
    where = relation(finished_before, project_id)
    handled = 0
    async with state.db.session() as session:
        refreshing = set((await session.exec(_refreshing())).all())
        index = 0
        async for start, stop in each_batch(session, Build, where, batch_size):
            index += 1
            builds = list(
                (
                    await session.exec(
                        select(Build).where(*where, *in_range(Build, start, stop)).order_by(col(Build.id))
                    )
                ).all()
            )
            if limit is not None:
                builds = builds[: max(limit - handled, 0)]
            paths = await full_paths(session, {b.project_id for b in builds})
            would = await _erasable_by_job(session, [b.id for b in builds if b.id is not None]) if dry_run else {}
            for build in builds:
                assert build.id is not None
                path = paths.get(build.project_id, "")
                if dry_run:
                    if build.project_id in refreshing:
                        yield JobOutcome(build.id, build.project_id, path, 0, 0, delete_service.REFRESHING)
                    else:
                        n, size = would.get(build.id, (0, 0))
                        yield JobOutcome(build.id, build.project_id, path, n, size)
                    continue
                result = await delete_service.execute(session, build)
                yield JobOutcome(
                    build.id,
                    build.project_id,
                    path,
                    result.destroyed_artifacts_count,
                    result.destroyed_bytes,
                    result.message,
                )
            handled += len(builds)
            changed = 0
            if not dry_run and builds:
                batch = [*where, *in_range(Build, start, stop)]
                if limit is not None:
                    batch.append(col(Build.id) <= builds[-1].id)
                updated = await session.exec(  # type: ignore[call-overload]
                    update(Build).where(*batch).values(artifacts_expire_at=clock.now())
                )
                changed = updated.rowcount
                await session.commit()
            yield BatchDone(index, len(builds), changed)
            if limit is not None and handled >= limit:
                return

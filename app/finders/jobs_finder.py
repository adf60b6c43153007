"""Which jobs the jobs API answers with (``Ci::JobsFinder``, ``find_build!``,
``latest_successful_build_for_ref!``), each loaded with what its entity shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app import clock
from app.errors import APIError
from app.models import Build, BuildStatus, FileType, JobArtifact, Pipeline, Runner, User, latest, row_offset

AVAILABLE_STATUSES = [s.value for s in BuildStatus]  # ``CommitStatus::AVAILABLE_STATUSES``


def record_not_found() -> APIError:
    """``ActiveRecord::RecordNotFound`` as the API rescues it (note the lower-case "found")."""
    return APIError(404, "404 Not found")


def artifacts_expired(job: Build) -> bool:
    """``Ci::Build#artifacts_expired?``."""
    return job.artifacts_expire_at is not None and job.artifacts_expire_at <= clock.now()


@dataclass
class JobRecord:
    """A job and the rows ``Entities::Ci::Job`` reads."""

    job: Build
    pipeline: Pipeline
    user: User | None = None
    runner: Runner | None = None
    artifacts: list[JobArtifact] = field(default_factory=list)

    @property
    def archive(self) -> JobArtifact | None:
        return next((a for a in self.artifacts if a.file_type == FileType.archive), None)


@dataclass(frozen=True)
class Page:
    records: list[JobRecord]
    has_next: bool
    total: int | None  # None when counting was skipped (``without_count``)


async def preload(session: AsyncSession, jobs: list[Build]) -> list[JobRecord]:
    """One query per related table, whatever the page size (GitLab's ``with_preloads``)."""
    if not jobs:
        return []

    async def by_id(model, ids):  # type: ignore[no-untyped-def]
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await session.exec(select(model).where(col(model.id).in_(wanted)))
        return {row.id: row for row in rows.all()}

    pipelines = await by_id(Pipeline, [j.commit_id for j in jobs])
    users = await by_id(User, [j.user_id for j in jobs])
    runners = await by_id(Runner, [j.runner_id for j in jobs])
    artifact_rows = await session.exec(
        select(JobArtifact).where(col(JobArtifact.job_id).in_([j.id for j in jobs])).order_by(col(JobArtifact.id))
    )
    artifacts: dict[int, list[JobArtifact]] = {}
    for artifact in artifact_rows.all():
        artifacts.setdefault(artifact.job_id, []).append(artifact)
    return [
        JobRecord(
            job=j,
            pipeline=pipelines[j.commit_id],
            user=users.get(j.user_id),
            runner=runners.get(j.runner_id),
            artifacts=artifacts.get(j.id or 0, []),
        )
        for j in jobs
    ]


async def _page(session: AsyncSession, query: SelectOfScalar[Build], page: int, per_page: int, *, count: bool) -> Page:
    """Offset pagination; one row more than asked tells whether a next page exists."""
    total = None
    if count:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = (await session.exec(counted)).one()
    rows = (await session.exec(query.offset(row_offset(page, per_page)).limit(per_page + 1))).all()
    return Page(await preload(session, list(rows[:per_page])), len(rows) > per_page, total)


def _scoped(query: SelectOfScalar[Build], scope: list[str] | None) -> SelectOfScalar[Build]:
    return query.where(col(Build.status).in_(scope)) if scope else query


async def project_jobs(
    session: AsyncSession, project_id: int, scope: list[str] | None, page: int, per_page: int
) -> Page:
    """``GET /projects/:id/jobs``: newest first, counted never (``without_count: true``)."""
    query = select(Build).where(Build.project_id == project_id).order_by(col(Build.id).desc())
    return await _page(session, _scoped(query, scope), page, per_page, count=False)


async def find_pipeline(session: AsyncSession, project_id: int, pipeline_id: int) -> Pipeline:
    """``user_project.all_pipelines.find``."""
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.project_id != project_id:
        raise record_not_found()
    return pipeline


async def pipeline_jobs(
    session: AsyncSession,
    pipeline: Pipeline,
    scope: list[str] | None,
    page: int,
    per_page: int,
    *,
    include_retried: bool = False,
) -> Page:
    """``Ci::JobsFinder`` for a pipeline: its builds (latest only unless ``include_retried``), newest first,
    with X-Total."""
    query = select(Build).where(Build.commit_id == pipeline.id).order_by(col(Build.id).desc())
    if not include_retried:
        query = query.where(latest())
    return await _page(session, _scoped(query, scope), page, per_page, count=True)


async def find_job(session: AsyncSession, project_id: int, job_id: int) -> Build:
    """``find_build!``: ``user_project.builds.find(id)``, the row alone."""
    job = await session.get(Build, job_id)
    if job is None or job.project_id != project_id:
        raise record_not_found()
    return job


async def find_build(session: AsyncSession, project_id: int, job_id: int) -> JobRecord:
    """``find_build!`` with what the Job entity reads."""
    return (await preload(session, [await find_job(session, project_id, job_id)]))[0]


async def latest_successful_build_for_ref(session: AsyncSession, project_id: int, job_name: str, ref: str) -> JobRecord:
    """``latest_successful_build_for_ref!``: the newest successful pipeline of the ref, then its
    job of that name that has an archive (expired or not)."""
    pipeline_id = (
        await session.exec(
            select(Pipeline.id)
            .where(Pipeline.project_id == project_id, Pipeline.ref == ref, Pipeline.status == BuildStatus.success)
            .order_by(col(Pipeline.id).desc())
            .limit(1)
        )
    ).first()
    if pipeline_id is None:
        raise record_not_found()
    has_archive = exists().where(JobArtifact.job_id == Build.id, JobArtifact.file_type == FileType.archive)
    job = (
        await session.exec(
            select(Build)
            .where(Build.commit_id == pipeline_id, Build.name == job_name, has_archive, latest())
            .order_by(col(Build.id).desc())
            .limit(1)
        )
    ).first()
    if job is None:
        raise record_not_found()
    return (await preload(session, [job]))[0]

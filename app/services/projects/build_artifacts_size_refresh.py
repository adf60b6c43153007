"""``Projects::BuildArtifactsSizeRefresh``: a project's ``build_artifacts_size`` recounted from
its artifact rows. While one runs, GitLab refuses to delete or expire the project's artifacts.

States (``STATES``): created 1 (queued by ``enqueue_refresh``), running 2 (a worker holds it),
pending 3 (a batch done, waiting for the next worker), finalizing 4 (every batch summed;
``FinalizeProjectStatisticsRefreshWorker`` moves the sum into the counter ten minutes later and
destroys the row). On the first ``process!`` (created -> running) the counter reads 0 and the
newest artifact id is remembered: batches walk the ids up to it. A running row untouched for two
hours is taken again (``stale``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.errors import APIError
from app.models import BuildArtifactsSizeRefresh, JobArtifact, RefreshState
from app.services.projects import statistics
from app.workers import scheduled_set

STALE_WINDOW = timedelta(hours=2)
# "to accommodate any ongoing deletion": a decrement committed before the refresh ended must reach
# the refresh sum, not the counter after it.
FINALIZE_DELAY = timedelta(minutes=10)
RECORD_CLASS = "Projects::BuildArtifactsSizeRefresh"
FINALIZE_WORKER = "Projects::FinalizeProjectStatisticsRefreshWorker"


async def refreshing_build_artifacts_size(session: AsyncSession, project_id: int) -> bool:
    """``Project#refreshing_build_artifacts_size?``: a refresh that has started (not merely created)."""
    state = (
        await session.exec(
            select(BuildArtifactsSizeRefresh.state).where(BuildArtifactsSizeRefresh.project_id == project_id)
        )
    ).first()
    return state is not None and state != RefreshState.created


async def reject_if_build_artifacts_size_refreshing(session: AsyncSession, project_id: int) -> None:
    """``reject_if_build_artifacts_size_refreshing!``: 409 while the usage is being recounted."""
    if await refreshing_build_artifacts_size(session, project_id):
        raise APIError(
            409, "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."
        )


def remaining() -> Any:
    """``remaining``: created or pending, or running and stale."""
    return or_(
        col(BuildArtifactsSizeRefresh.state).in_([RefreshState.created, RefreshState.pending]),
        and_(
            BuildArtifactsSizeRefresh.state == RefreshState.running,
            col(BuildArtifactsSizeRefresh.updated_at) < clock.now() - STALE_WINDOW,
        ),
    )


async def enqueue_refresh(session: AsyncSession, project_ids: Iterable[int]) -> int:
    """``enqueue_refresh(projects)``: one created row a project, ``bulk_insert!(skip_duplicates:
    true)`` (a project already queued or refreshing keeps its row). Answers the rows inserted."""
    now = clock.now()
    rows = [
        {"project_id": pid, "state": RefreshState.created, "created_at": now, "updated_at": now}
        for pid in dict.fromkeys(project_ids)
    ]
    if not rows:
        return 0
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite  # type: ignore[union-attr]
    statement = (
        dialect.insert(BuildArtifactsSizeRefresh)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["project_id"])
        .returning(BuildArtifactsSizeRefresh.id)
    )
    inserted = await session.exec(statement)  # type: ignore[call-overload]
    return len(inserted.all())


async def remaining_any(session: AsyncSession) -> bool:
    """``remaining.any?``."""
    return (await session.exec(select(BuildArtifactsSizeRefresh.id).where(remaining()).limit(1))).first() is not None


async def process_next_refresh(session: AsyncSession) -> BuildArtifactsSizeRefresh | None:
    """``process_next_refresh!``: the next remaining row (pending before created; ``FOR UPDATE SKIP
    LOCKED``) goes to running, in one statement, so two workers never take the same row. On its
    first start: ``reset_project_statistics!`` (the counter reads 0), ``refresh_started_at``, and
    the newest artifact id. Commits."""
    now = clock.now()
    nxt = (
        select(BuildArtifactsSizeRefresh.id)
        .where(remaining())
        .order_by(col(BuildArtifactsSizeRefresh.state).desc(), col(BuildArtifactsSizeRefresh.id))
        .limit(1)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        nxt = nxt.with_for_update(skip_locked=True)
    taken = await session.exec(  # type: ignore[call-overload]
        update(BuildArtifactsSizeRefresh)
        .where(col(BuildArtifactsSizeRefresh.id) == nxt.scalar_subquery())
        .values(state=RefreshState.running, updated_at=now)
        .returning(BuildArtifactsSizeRefresh)
    )
    refresh = taken.scalars().first()
    if refresh is None:
        await session.commit()
        return None
    if refresh.refresh_started_at is None:  # created -> running
        newest = select(func.max(JobArtifact.id)).where(JobArtifact.project_id == refresh.project_id)
        last_id = (await session.exec(newest)).one()
        refresh.last_job_artifact_id_on_refresh_start, refresh.refresh_started_at = last_id, now
        await statistics.initiate_refresh(session, refresh.project_id)
        await session.exec(  # type: ignore[call-overload]
            update(BuildArtifactsSizeRefresh)
            .where(col(BuildArtifactsSizeRefresh.id) == refresh.id)
            .values(refresh_started_at=now, last_job_artifact_id_on_refresh_start=last_id)
        )
    await session.commit()
    return refresh


async def next_batch(session: AsyncSession, refresh: BuildArtifactsSizeRefresh, limit: int) -> list[tuple[int, int]]:
    """``next_batch(limit:)``: (id, size) of the project's artifacts after the last one counted, up
    to the newest at the start, by id."""
    if refresh.last_job_artifact_id_on_refresh_start is None:
        return []
    rows = await session.exec(
        select(JobArtifact.id, JobArtifact.size)
        .where(
            JobArtifact.project_id == refresh.project_id,
            col(JobArtifact.id) <= refresh.last_job_artifact_id_on_refresh_start,
            col(JobArtifact.id) > (refresh.last_job_artifact_id or 0),
        )
        .order_by(col(JobArtifact.id))
        .limit(limit)
    )
    return [(artifact_id, size or 0) for artifact_id, size in rows.all() if artifact_id is not None]


async def requeue(session: AsyncSession, refresh: BuildArtifactsSizeRefresh, last_job_artifact_id: int) -> None:
    """``requeue!(last_id)``: running -> pending, the batch remembered."""
    refresh.state, refresh.updated_at = RefreshState.pending, clock.now()
    refresh.last_job_artifact_id = last_job_artifact_id
    await session.exec(  # type: ignore[call-overload]
        update(BuildArtifactsSizeRefresh)
        .where(col(BuildArtifactsSizeRefresh.id) == refresh.id)
        .values(state=refresh.state, last_job_artifact_id=last_job_artifact_id, updated_at=refresh.updated_at)
    )


async def schedule_finalize(session: AsyncSession, refresh: BuildArtifactsSizeRefresh) -> None:
    """``schedule_finalize!``: running -> finalizing, and the finalize worker due in ten minutes."""
    refresh.state, refresh.updated_at = RefreshState.finalizing, clock.now()
    await session.exec(  # type: ignore[call-overload]
        update(BuildArtifactsSizeRefresh)
        .where(col(BuildArtifactsSizeRefresh.id) == refresh.id)
        .values(state=refresh.state, updated_at=refresh.updated_at)
    )
    await scheduled_set.perform_in(session, FINALIZE_WORKER, FINALIZE_DELAY, RECORD_CLASS, refresh.id)


async def finalize(session: AsyncSession, refresh_id: int) -> int | None:
    """``finalize!``: the refresh sum into the counter, the row destroyed. ``None`` when the row is
    gone already. Commits; answers the sum."""
    refresh = await session.get(BuildArtifactsSizeRefresh, refresh_id)
    if refresh is None:
        return None
    amount = await statistics.finalize_refresh(session, refresh.project_id)
    await session.delete(refresh)
    await session.commit()
    return amount

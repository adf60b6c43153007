"""Sidekiq's scheduled set: ``Worker.perform_in(delay, *args)`` records a job that becomes due
``delay`` later on the mock clock (``app.clock``); a Sidekiq process's poller
(``Sidekiq::Scheduled::Poller``) takes due jobs and runs them. GitLab keeps the set in Redis
(``schedule``); here it is the table ``mockcoord_scheduled_jobs``, so whichever process looks
first takes a job (the claim is one ``DELETE ... RETURNING``) and runs it once.

This module only records and claims; ``app.workers.scheduled.run_due`` runs what is due.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import ScheduledJob
from app.state import AppState


async def perform_in(session: AsyncSession, job_class: str, delay: timedelta, *args: Any) -> None:
    """Due ``delay`` from now, written in the caller's transaction (GitLab's ``run_after_commit``
    enqueues after the commit; a job recorded with the change it follows is never lost or early)."""
    await session.exec(  # type: ignore[call-overload]
        insert(ScheduledJob).values(job_class=job_class, args=list(args), run_at=clock.now() + delay)
    )


async def take_due(state: AppState, limit: int = 100) -> list[ScheduledJob]:
    """Claims up to ``limit`` due jobs, earliest first: they are this caller's to run."""
    due = (
        select(ScheduledJob.id)
        .where(col(ScheduledJob.run_at) <= clock.now())
        .order_by(col(ScheduledJob.run_at), col(ScheduledJob.id))
        .limit(limit)
    )
    if not state.db.is_sqlite:
        due = due.with_for_update(skip_locked=True)
    async with state.db.session() as session:
        if (
            await session.exec(select(ScheduledJob.id).where(col(ScheduledJob.run_at) <= clock.now()).limit(1))
        ).first() is None:
            return []  # a read, not a write, on every look while nothing is due
        rows = await session.exec(  # type: ignore[call-overload]
            delete(ScheduledJob).where(col(ScheduledJob.id).in_(due.scalar_subquery())).returning(ScheduledJob)
        )
        claimed = list(rows.scalars().all())
        await session.commit()
    return sorted(claimed, key=lambda job: (job.run_at, job.id or 0))


async def pending(state: AppState) -> list[ScheduledJob]:
    """Every job waiting, earliest first (what Sidekiq's Scheduled page lists)."""
    async with state.db.session() as session:
        rows = await session.exec(select(ScheduledJob).order_by(col(ScheduledJob.run_at), col(ScheduledJob.id)))
        return list(rows.all())

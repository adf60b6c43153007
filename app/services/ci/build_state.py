"""The ``Ci::Build`` state machine as the user actions need it (``Ci::HasStatus``, ``retryable?``,
``playable?``): every status change is a conditional UPDATE on the status it starts from, so a
runner claiming or finishing the job at the same moment never has its change overwritten."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Build, BuildStatus, Pipeline, latest

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


async def transition(session: AsyncSession, job: Build, sources: Iterable[str], **values: object) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        update(Build).where(col(Build.id) == job.id, col(Build.status).in_(list(sources))).values(**values)
    )
    await session.commit()
    return result.rowcount == 1


async def refreshed(session: AsyncSession, job: Build) -> Build:
    fresh = await session.get(Build, job.id, populate_existing=True)
    assert fresh is not None
    return fresh


def retryable(job: Build) -> bool:
    """``Ci::Build#retryable?``."""
    return not job.retried and job.erased_at is None and job.status in RETRYABLE


def playable(job: Build) -> bool:
    """``Ci::Build#playable?``: an action job waiting for its play, or finished (played again = retried)."""
    return job.when in ACTIONS and (job.status in (BuildStatus.manual, BuildStatus.scheduled) or retryable(job))


async def latest_jobs(session: AsyncSession, pipeline: Pipeline) -> list[Build]:
    query = select(Build).where(Build.commit_id == pipeline.id, latest()).order_by(col(Build.stage_idx), col(Build.id))
    return list((await session.exec(query)).all())

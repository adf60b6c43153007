"""``Ci::JobArtifacts::UpdateUnknownLockedStatusService``: the backlog of ``unknown`` artifacts
(written before 15.0, or while ``ci_update_unlocked_job_artifacts`` was off) worked through.

Per pass, 100 expired ``unknown`` rows (oldest expiry first) name their jobs; every expired
unknown artifact of a job whose pipeline is locked becomes ``artifacts_locked``, every one of
the other jobs is destroyed. So a pass can touch more than 100 rows: the page's "10,000 every
seven minutes" counts the rows sampled (100 passes of 100; 500 passes with
``ci_job_artifacts_backlog_large_loop_limit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import feature
from app.lib.exclusive_lease import ExclusiveLease, in_lock
from app.lib.loop_helpers import loop_until
from app.models import ArtifactLocked, Build, JobArtifact, Pipeline
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch
from app.state import AppState

LEASE_KEY = "unknown_status_job_artifacts:update:lock"
LARGE_LOOP_LIMIT = 500


@dataclass
class UpdateUnknownLockedStatusService:
    state: AppState
    start_at: datetime = field(default_factory=clock.now)
    removed_count: int = 0
    locked_count: int = 0

    async def execute(self) -> dict[str, int]:
        """``{"removed_count", "locked_count"}``; ``FailedToObtainLockError`` when the lease is held."""
        limits = self.state.settings.housekeeping
        async with self.state.db.session() as session:
            large = await feature.enabled(session, "ci_job_artifacts_backlog_large_loop_limit")
        lease = ExclusiveLease(
            self.state.db, self.state.settings.redis_url, LEASE_KEY, timedelta(seconds=limits.lease_timeout_seconds)
        )
        async with in_lock(lease):
            await loop_until(
                self._update_batch,
                seconds=limits.loop_timeout_seconds,
                limit=LARGE_LOOP_LIMIT if large else limits.unknown_loop_limit,
            )
        return {"removed_count": self.removed_count, "locked_count": self.locked_count}

    def _expired_unknown(self) -> list:  # type: ignore[type-arg]
        return [JobArtifact.locked == ArtifactLocked.unknown, col(JobArtifact.expire_at) < self.start_at]

    async def _update_batch(self) -> bool:
        # the sample read outside any transaction (one round trip on PostgreSQL for an empty pass)
        async with AsyncSession(self.state.db.reads) as reader:
            job_ids = set(
                (
                    await reader.exec(
                        select(JobArtifact.job_id)
                        .where(*self._expired_unknown())
                        .order_by(col(JobArtifact.expire_at))
                        .limit(self.state.settings.housekeeping.unknown_batch_size)
                    )
                ).all()
            )
        if not job_ids:  # ``count += 0`` is still truthy: the run goes on
            return not self.state.instrument.ends_run_on_empty_pass()
        async with self.state.db.session() as session:
            locked_jobs = set(
                (
                    await session.exec(
                        select(Build.id)
                        .join(Pipeline, col(Pipeline.id) == Build.commit_id)
                        .where(col(Build.id).in_(job_ids), Pipeline.locked == ArtifactLocked.artifacts_locked)
                    )
                ).all()
            )
            if locked_jobs:
                result = await session.exec(  # type: ignore[call-overload]
                    update(JobArtifact)
                    .where(col(JobArtifact.job_id).in_(locked_jobs), *self._expired_unknown())
                    .values(locked=ArtifactLocked.artifacts_locked)
                )
                self.locked_count += result.rowcount
                await session.commit()
            unlocked_jobs = job_ids - locked_jobs
            if unlocked_jobs:
                artifacts = (
                    await session.exec(
                        select(JobArtifact).where(col(JobArtifact.job_id).in_(unlocked_jobs), *self._expired_unknown())
                    )
                ).all()
                self.removed_count += await destroy_batch(session, list(artifacts))
        return True

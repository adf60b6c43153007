"""``Ci::JobArtifacts::DestroyAllExpiredService``: what ``ExpireBuildArtifactsWorker`` runs.

Under the lease ``expired_job_artifacts:destroy:lock``, batches of 100 expired unlocked
non-trace artifacts go through ``DestroyBatchService`` until the loop limit (500) or five
minutes; an empty batch does not end a run. With ``ci_destroy_unlocked_job_artifacts`` off
(15.0-15.2 by default, and before) the old slow walk runs instead: every expired row, newest
expiry first, a batch at a time, keeping only those whose pipeline is unlocked. That walk is
why a backlog whose newest expired rows are locked drains a few hundred rows a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import feature, gitlab_version
from app.lib.exclusive_lease import ExclusiveLease, in_lock
from app.lib.loop_helpers import loop_until
from app.models import ArtifactLocked, Build, FileType, JobArtifact, Pipeline
from app.services.ci.job_artifacts.destroy_batch_service import destroy_batch
from app.state import AppState

LEASE_KEY = "expired_job_artifacts:destroy:lock"


def loop_limit(state: AppState, large_loop_limit: bool) -> int:
    """500 since 16.0; 15.x looped 100 times unless ``ci_artifact_fast_removal_large_loop_limit``."""
    configured = state.settings.housekeeping.expire_loop_limit
    if configured is not None:
        return configured
    return 100 if gitlab_version.between((15, 0), (15, 99)) and not large_loop_limit else 500


@dataclass
class DestroyAllExpiredService:
    state: AppState
    start_at: datetime | None = None
    removed: int = 0

    async def execute(self) -> int:
        """Artifacts destroyed this run; ``FailedToObtainLockError`` when another run holds the lease."""
        limits = self.state.settings.housekeeping
        self.start_at = self.start_at or clock.now()
        lease = ExclusiveLease(
            self.state.db, self.state.settings.redis_url, LEASE_KEY, timedelta(seconds=limits.lease_timeout_seconds)
        )
        async with in_lock(lease):
            async with self.state.db.session() as session:
                fast = await feature.enabled(session, "ci_destroy_unlocked_job_artifacts")
                limit = loop_limit(
                    self.state, await feature.enabled(session, "ci_artifact_fast_removal_large_loop_limit")
                )
            if fast:
                await loop_until(self._destroy_unlocked_batch, seconds=limits.loop_timeout_seconds, limit=limit)
            else:
                await self._slow_iteration(limit, limits.loop_timeout_seconds)
        return self.removed

    async def _destroy_unlocked_batch(self) -> bool:
        """``expired_before(start_at).non_trace.artifact_unlocked.limit(100)``, read outside any
        transaction as ActiveRecord reads it (on PostgreSQL one round trip, where BEGIN and COMMIT
        around it made three: an empty pass, 499 of 500 in an idle run, costs a third as much);
        ``DestroyBatchService`` opens the transaction when there is something to destroy."""
        async with AsyncSession(self.state.db.reads) as reader:
            artifacts = list(
                (
                    await reader.exec(
                        select(JobArtifact)
                        .where(
                            JobArtifact.locked == ArtifactLocked.unlocked,
                            col(JobArtifact.expire_at) < self.start_at,
                            JobArtifact.file_type != FileType.trace,
                        )
                        .limit(self.state.settings.housekeeping.expire_batch_size)
                    )
                ).all()
            )
        if not artifacts:  # ``count += 0``: truthy, the run goes on
            return not self.state.instrument.ends_run_on_empty_pass()
        async with self.state.db.session() as session:
            self.removed += await destroy_batch(session, artifacts, skip_projects_on_refresh=True)
        return True

    async def _slow_iteration(self, limit: int, seconds: float) -> None:
        """``each_batch(of: 100, column: :expire_at, order: :desc)`` over every expired row, each
        batch narrowed to ``unlocked`` (the pipeline's lock, a join), until the timeout or
        batch index ``limit``."""
        batch_size = self.state.settings.housekeeping.expire_batch_size
        after: tuple[datetime, int] | None = None
        deadline = time.monotonic() + seconds
        for _index in range(1, limit + 1):
            async with self.state.db.session() as session:
                query = (
                    select(JobArtifact.expire_at, JobArtifact.id)
                    .where(col(JobArtifact.expire_at) < self.start_at)
                    .order_by(col(JobArtifact.expire_at).desc(), col(JobArtifact.id).desc())
                    .limit(batch_size)
                )
                if after is not None:
                    query = query.where(
                        or_(
                            col(JobArtifact.expire_at) < after[0],
                            and_(col(JobArtifact.expire_at) == after[0], col(JobArtifact.id) < after[1]),
                        )
                    )
                keys = list((await session.exec(query)).all())
                if not keys:
                    return
                after = keys[-1]
                unlocked = (
                    await session.exec(
                        select(JobArtifact)
                        .join(Build, col(Build.id) == JobArtifact.job_id)
                        .join(Pipeline, col(Pipeline.id) == Build.commit_id)
                        .where(
                            col(JobArtifact.id).in_([key[1] for key in keys]),
                            Pipeline.locked == ArtifactLocked.unlocked,
                        )
                    )
                ).all()
                if unlocked:
                    self.removed += await destroy_batch(session, list(unlocked))
            if time.monotonic() > deadline:
                return

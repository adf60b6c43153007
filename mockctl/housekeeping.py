"""Housekeeping on demand: GitLab's cron workers run now, and the administrator page's
"expedite artifact removal" console snippet, with counts before and after.

``/-/mock/housekeeping/*`` (``mockctl.api.housekeeping``) and ``mockcoord housekeeping``
(through that API) use these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import col, select

from app import clock
from app.models import ArtifactLocked, DeletedObject, JobArtifact
from app.services.ci import delete_objects_service
from app.state import AppState
from app.workers.scheduler import run_job

# The names the control plane takes, and GitLab's cron jobs they run.
WORKERS = {
    "unknown": "update_locked_unknown_artifacts_worker",
    "expire": "expire_build_artifacts_worker",
    "delete_objects": "ci_schedule_delete_objects_worker",
}
ALL_ORDER = ("unknown", "expire", "delete_objects")  # a locked-or-destroyed row can expire; then its file goes


async def counts(state: AppState, now: datetime | None = None) -> dict[str, Any]:
    """Rows and bytes by the mock clock: artifacts (all, expired by lock state) and the
    deleted-object queue (all, ready for removal). Two aggregate queries, whatever the size."""
    now = now or clock.now()
    expired = col(JobArtifact.expire_at) < now
    async with state.db.session() as session:
        by_lock = (
            await session.exec(
                select(  # type: ignore[call-overload]
                    JobArtifact.locked,
                    func.count(),
                    func.coalesce(func.sum(JobArtifact.size), 0),
                    func.coalesce(func.sum(case((expired, 1), else_=0)), 0),
                ).group_by(JobArtifact.locked)
            )
        ).all()
        queue, ready, oldest = (
            await session.exec(
                select(  # type: ignore[call-overload]
                    func.count(),
                    func.coalesce(func.sum(case((col(DeletedObject.pick_up_at) < now, 1), else_=0)), 0),
                    func.min(DeletedObject.pick_up_at),
                )
            )
        ).one()
    expired_by_lock = {lock.name: 0 for lock in ArtifactLocked}
    for locked, _count, _size, expired_count in by_lock:
        expired_by_lock[ArtifactLocked(locked).name] = int(expired_count)
    return {
        "artifacts": sum(int(row[1]) for row in by_lock),
        "artifacts_bytes": sum(int(row[2]) for row in by_lock),
        "expired_artifacts": sum(expired_by_lock.values()),
        "expired_artifacts_by_locked": expired_by_lock,
        "deleted_objects": int(queue),
        "deleted_objects_ready": int(ready),
        "oldest_pick_up_at": clock.iso(oldest),
    }


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {k: after[k] - before[k] for k, v in before.items() if isinstance(v, int)}


async def run(state: AppState, worker: str) -> dict[str, Any]:
    """``worker``: a key of ``WORKERS`` or ``all`` (GitLab's order: unknown, expire, delete_objects).
    Each run as Sidekiq runs it (logged, timed; a failure, such as a lease another run holds, is
    the run's ``job_status``, and the next goes on)."""
    names = ALL_ORDER if worker == "all" else (worker,)
    before = await counts(state)
    runs = [(await run_job(state, WORKERS[name])).as_json() for name in names]
    after = await counts(state)
    return {"worker": worker, "runs": runs, "before": before, "after": after, "changed": difference(before, after)}


async def expedite(state: AppState) -> AsyncIterator[dict[str, Any]]:
    """The page's snippet, step by step::

        Ci::DeletedObject.update_all(pick_up_at: Time.current)
        while Ci::DeletedObject.where("pick_up_at < ?", Time.current).count > 0
          Ci::DeleteObjectsService.new.execute
          sleep(10)
        end

    (without the ``sleep``). Yields ``start`` (counts, rows made ready), one ``batch`` per
    service run (removed, failed, still ready) and ``done`` (counts before and after). A removal
    that fails moves its row ten minutes on (the service's retry), so the loop ends with those
    rows still queued, as GitLab's does."""
    before = await counts(state)
    async with state.db.session() as session:
        moved = await session.exec(update(DeletedObject).values(pick_up_at=clock.now()))  # type: ignore[call-overload]
        await session.commit()
    yield {"event": "start", "before": before, "made_ready": moved.rowcount}
    removed = failed = batches = 0
    while (ready := await _ready(state)) > 0:
        result = await delete_objects_service.execute(state)
        if not (result.removed or result.failed):
            break  # another process claimed what was ready
        batches += 1
        removed += result.removed
        failed += result.failed
        yield {"event": "batch", "removed": result.removed, "failed": result.failed, "ready": ready - result.removed}
    after = await counts(state)
    yield {
        "event": "done",
        "batches": batches,
        "removed": removed,
        "failed": failed,
        "before": before,
        "after": after,
        "changed": difference(before, after),
    }


async def _ready(state: AppState) -> int:
    async with state.db.session() as session:
        return int(
            (
                await session.exec(
                    select(func.count()).where(col(DeletedObject.pick_up_at) < clock.now())  # type: ignore[call-overload]
                )
            ).one()
        )

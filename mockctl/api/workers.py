"""``/-/mock/workers``: run a cron worker now. GitLab's Sidekiq runs them on a schedule;
mockcoord has none yet, and a test wants the run at a moment of its choosing anyway."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.errors import APIError, not_found
from app.lib.exclusive_lease import FailedToObtainLockError
from app.state import AppState
from app.workers import scheduled, scheduled_set
from app.workers.cron import CRON_WORKERS
from mockctl.api.mock import require_admin

router = APIRouter(prefix="/-/mock/workers")


@router.get("")
async def list_workers(_state: AppState = Depends(require_admin)) -> list[dict[str, str]]:
    return [{"name": name, "job_class": w.job_class, "cron": w.cron} for name, w in CRON_WORKERS.items()]


@router.get("/scheduled")
async def list_scheduled(state: AppState = Depends(require_admin)) -> list[dict[str, Any]]:
    """Sidekiq's scheduled set: jobs enqueued with ``perform_in``, by due time."""
    return [
        {"job_class": j.job_class, "args": j.args, "run_at": j.run_at.isoformat()}
        for j in await scheduled_set.pending(state)
    ]


@router.post("/scheduled/perform")
async def perform_scheduled(state: AppState = Depends(require_admin)) -> list[dict[str, Any]]:
    """Run every scheduled job due on the mock clock (what Sidekiq's scheduled poller does)."""
    return await scheduled.run_due(state)


@router.post("/{name}/perform")
async def perform(name: str, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """``name``: the cron job (``object_storage_delete_stale_direct_uploads_worker``) or the
    class (``ObjectStorage::DeleteStaleDirectUploadsWorker``). Answers what the run did."""
    worker = CRON_WORKERS.get(name) or next((w for w in CRON_WORKERS.values() if w.job_class == name), None)
    if worker is None:
        raise not_found("Worker")
    try:
        done = await worker(state).perform()
    except FailedToObtainLockError as exc:  # another run holds the lease: GitLab's job fails, nothing done
        raise APIError(409, str(exc)) from None
    return {"job_class": worker.job_class, **done}

"""``ObjectStorage::DeleteStaleDirectUploadsService``: uploads authorized but never finalized
(a Workhorse killed mid-upload, a client that gave up) are let go after
``MAX_UPLOAD_DURATION``, their objects with them, so nothing is stored that no row points at."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.models import PendingDirectUpload
from app.state import AppState
from app.storage import StorageError

MAX_UPLOAD_DURATION = timedelta(hours=3)  # ``ObjectStorage::PendingDirectUpload::MAX_UPLOAD_DURATION``
MAX_EXEC_DURATION = 250.0  # seconds of real time a run may take, as GitLab's
BATCH_SIZE = 100  # rows a transaction; GitLab walks its Redis hash with HSCAN instead


@dataclass(frozen=True)
class Result:
    """GitLab's ``success(...)`` payload, plus mockcoord's part of the bucket lifecycle rule."""

    total_pending_entries: int
    total_deleted_stale_entries: int
    execution_timeout: bool
    total_aborted_incomplete_uploads: int


async def execute(state: AppState) -> Result:
    """Pending uploads older than 3 hours (by ``app.clock``) go with their objects, then the
    store's incomplete uploads as old that no pending upload is waiting for."""
    deadline = time.monotonic() + MAX_EXEC_DURATION
    cutoff = clock.now() - MAX_UPLOAD_DURATION
    async with state.db.session() as session:
        total = (await session.exec(select(func.count()).select_from(PendingDirectUpload))).one()
        deleted, timeout = await _delete_stale(state, session, cutoff, deadline)
        aborted = 0
        if not timeout:
            aborted, timeout = await abort_incomplete_uploads(state, session, cutoff, deadline)
    return Result(total, deleted, timeout, aborted)


async def _delete_stale(state: AppState, session: AsyncSession, cutoff: datetime, deadline: float) -> tuple[int, bool]:
    """Object first, then the row (GitLab's order): a failed delete is retried next run
    rather than leaving an object no row points at."""
    deleted, last_id = 0, 0
    while True:
        stale = (
            await session.exec(
                select(PendingDirectUpload)
                .where(col(PendingDirectUpload.created_at) < cutoff, col(PendingDirectUpload.id) > last_id)
                .order_by(col(PendingDirectUpload.id))
                .limit(BATCH_SIZE)
            )
        ).all()
        if not stale:
            return deleted, False
        last_id = stale[-1].id or last_id
        gone: list[int] = []
        for pending in stale:
            try:
                await state.store.delete(pending.path)
            except StorageError:
                continue
            gone.append(pending.id or 0)
            if time.monotonic() > deadline:
                break
        await session.exec(delete(PendingDirectUpload).where(col(PendingDirectUpload.id).in_(gone)))  # type: ignore[call-overload]
        await session.commit()
        deleted += len(gone)
        if time.monotonic() > deadline:
            return deleted, True


async def abort_incomplete_uploads(
    state: AppState, session: AsyncSession, initiated_before: datetime | None = None, deadline: float | None = None
) -> tuple[int, bool]:
    """Abort the incomplete uploads (S3 multipart uploads, local temp files) begun before
    ``initiated_before`` that no pending upload waits for; all of them when it is None.
    GitLab leaves these to the bucket's ``AbortIncompleteMultipartUpload`` lifecycle rule.
    Answers how many, and whether the deadline cut the run short."""
    aborted = 0
    async for page in state.store.incomplete_uploads():
        waited_for = set(
            (
                await session.exec(
                    select(PendingDirectUpload.path).where(col(PendingDirectUpload.path).in_([u.key for u in page]))
                )
            ).all()
        )
        for upload in page:
            if initiated_before is not None and (upload.key in waited_for or upload.initiated >= initiated_before):
                continue
            try:
                await state.store.abort_upload(upload)
            except StorageError:
                continue
            aborted += 1
            if deadline is not None and time.monotonic() > deadline:
                return aborted, True
    return aborted, False

"""``Ci::DeleteObjectsService``: the second phase of deletion, stored files removed.

A batch of 100 ready ``Ci::DeletedObject`` rows (``pick_up_at`` passed) is claimed in a short
transaction by moving their ``pick_up_at`` ten minutes on (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent jobs take different rows); the claim is the retry schedule. Then,
outside any transaction, the files are removed (a missing file counts as removed) and the
rows of the removed ones deleted. A failed removal, or a job killed between the two steps,
leaves its rows to reappear ten minutes later: nothing is lost, nothing removed twice by two
live jobs.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select

from app import clock
from app.lib import metrics
from app.models import DeletedObject
from app.state import AppState


@dataclass(frozen=True)
class BatchResult:
    removed: int
    failed: int


async def execute(state: AppState) -> BatchResult:
    """One batch (``Ci::DeleteObjectsService#execute``)."""
    limits = state.settings.housekeeping
    now = clock.now()
    ready = (
        select(DeletedObject.id)
        .where(col(DeletedObject.pick_up_at) < now)
        .order_by(col(DeletedObject.pick_up_at))
        .limit(limits.delete_objects_batch_size)
    )
    if not state.db.is_sqlite:  # SQLite has one writer at a time: the UPDATE is the claim
        ready = ready.with_for_update(skip_locked=True)
    async with state.db.session() as session:
        claimed = list(
            (
                await session.exec(  # type: ignore[call-overload]
                    update(DeletedObject)
                    .where(col(DeletedObject.id).in_(ready.scalar_subquery()))
                    .values(pick_up_at=now + timedelta(seconds=limits.delete_objects_retry_in_seconds))
                    .returning(DeletedObject.id, DeletedObject.store_dir, DeletedObject.file)
                )
            ).all()
        )
        await session.commit()
    if not claimed:
        return BatchResult(0, 0)
    # What ``file.remove!`` removes: the directory and file name as recorded, right or wrong.
    keys = {row.id: posixpath.join(row.store_dir, row.file) for row in claimed}
    failed_keys = set(await state.store.delete_many(list(keys.values())))
    removed = [row_id for row_id, key in keys.items() if key not in failed_keys]
    if removed:
        async with state.db.session() as session:
            await session.exec(delete(DeletedObject).where(col(DeletedObject.id).in_(removed)))  # type: ignore[call-overload]
            await session.commit()
    failed = len(claimed) - len(removed)
    metrics.deleted_objects_removed.inc(len(removed))
    metrics.deleted_objects_failed.inc(failed)
    return BatchResult(len(removed), failed)


async def remaining_batches_count(state: AppState, max_batch_count: int) -> int:
    """``ceil(min(ready, max_batch_count x 100) / 100)``: how many jobs the capacity worker wants."""
    batch = state.settings.housekeeping.delete_objects_batch_size
    async with state.db.session() as session:
        capped = (
            select(DeletedObject.id).where(col(DeletedObject.pick_up_at) < clock.now()).limit(max_batch_count * batch)
        )
        ready = (await session.exec(select(func.count()).select_from(capped.subquery()))).one()
    return math.ceil(ready / batch)

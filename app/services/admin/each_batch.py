"""``EachBatch#each_batch(of: 1000)``: the ids of a relation in ranges, the next range's start
found before the block runs, so what the block deletes does not shift the walk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

BATCH_SIZE = 1000


async def each_batch(
    session: AsyncSession, model: Any, where: list[Any], of: int = BATCH_SIZE
) -> AsyncIterator[tuple[int, int | None]]:
    """Yields ``(start, stop)``: the batch is ``where`` with ``start <= id < stop`` (no ``stop``:
    the last batch). Each range is read when asked for, as GitLab's is."""
    id_column = col(model.id)
    start = (await session.exec(select(id_column).where(*where).order_by(id_column).limit(1))).first()
    while start is not None:
        stop = (
            await session.exec(
                select(id_column).where(*where, id_column >= start).order_by(id_column).offset(of).limit(1)
            )
        ).first()
        yield start, stop
        if stop is None:
            return
        start = stop


def in_range(model: Any, start: int, stop: int | None) -> list[Any]:
    id_column = col(model.id)
    return [id_column >= start] if stop is None else [id_column >= start, id_column < stop]

"""``ProjectStatistics.build_artifacts_size`` updates.

GitLab buffers these increments in Redis and flushes them ~10 minutes later; mockcoord
applies them in the same transaction as the artifact rows, so usage never lags.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import ProjectStatistics


async def increment_build_artifacts_size(session: AsyncSession, project_id: int, delta: int) -> None:
    if not delta:
        return
    await session.exec(  # type: ignore[call-overload]
        update(ProjectStatistics)
        .where(ProjectStatistics.project_id == project_id)
        .values(
            build_artifacts_size=ProjectStatistics.build_artifacts_size + delta,
            storage_size=ProjectStatistics.storage_size + delta,
        )
    )

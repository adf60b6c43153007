"""``ProjectStatistics.order(build_artifacts_size: :desc).limit(n)``: the administrator page's
"List projects by total size of job artifacts stored"."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.finders.project_finder import full_paths
from app.models import ProjectStatistics


@dataclass(frozen=True)
class ProjectUsage:
    project_id: int
    full_path: str
    build_artifacts_size: int


async def by_build_artifacts_size(session: AsyncSession, limit: int) -> list[ProjectUsage]:
    """Largest first (ties by project id); the counter as stored, as the page's snippet reads it."""
    rows = (
        await session.exec(
            select(ProjectStatistics.project_id, ProjectStatistics.build_artifacts_size)
            .order_by(col(ProjectStatistics.build_artifacts_size).desc(), col(ProjectStatistics.project_id))
            .limit(limit)
        )
    ).all()
    paths = await full_paths(session, {pid for pid, _ in rows})
    return [ProjectUsage(pid, paths.get(pid, ""), size) for pid, size in rows]

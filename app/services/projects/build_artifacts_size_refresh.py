"""``Projects::BuildArtifactsSizeRefresh``: while a project's artifact usage is being recounted,
GitLab refuses to delete or expire its artifacts."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import APIError
from app.models import BuildArtifactsSizeRefresh, RefreshState


async def refreshing_build_artifacts_size(session: AsyncSession, project_id: int) -> bool:
    """``Project#refreshing_build_artifacts_size?``: a refresh that has started (not merely created)."""
    state = (
        await session.exec(
            select(BuildArtifactsSizeRefresh.state).where(BuildArtifactsSizeRefresh.project_id == project_id)
        )
    ).first()
    return state is not None and state != RefreshState.created


async def reject_if_build_artifacts_size_refreshing(session: AsyncSession, project_id: int) -> None:
    """``reject_if_build_artifacts_size_refreshing!``: 409 while the usage is being recounted."""
    if await refreshing_build_artifacts_size(session, project_id):
        raise APIError(
            409, "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."
        )

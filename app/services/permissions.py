"""The slice of GitLab's ``ProjectPolicy`` artifact downloads depend on: ``read_build``."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import (
    AccessLevel,
    JobTokenProjectScopeLink,
    Member,
    Namespace,
    Project,
    ProjectCiCdSetting,
    User,
    VisibilityLevel,
)

INBOUND = 1


async def namespace_ancestry(session: AsyncSession, namespace_id: int) -> list[int]:
    """The namespace and its parents, nearest first (``closest_setting`` walks this order)."""
    ids: list[int] = []
    current: int | None = namespace_id
    while current is not None and current not in ids:
        ids.append(current)
        current = (await session.exec(select(Namespace.parent_id).where(Namespace.id == current))).first()
    return ids


async def max_access_level(session: AsyncSession, user_id: int, project: Project) -> int:
    """Direct project membership or inherited group membership, whichever is higher."""
    ancestry = await namespace_ancestry(session, project.namespace_id)
    rows = await session.exec(
        select(Member.access_level).where(
            Member.user_id == user_id,
            ((Member.source_type == "Project") & (Member.source_id == project.id))
            | ((Member.source_type == "Namespace") & (Member.source_id.in_(ancestry))),  # type: ignore[union-attr]
        )
    )
    return max(rows.all(), default=AccessLevel.NO_ACCESS)


async def can_read_build(session: AsyncSession, user: User | None, project: Project) -> bool:
    """Reporters and up always; guests and everyone who can see the project only with
    "Public pipelines" (``public_builds``); admins always; blocked users never."""
    if user is not None and user.state != "active":
        return False
    if user is not None and user.admin:
        return True
    level = await max_access_level(session, user.id, project) if user is not None else 0  # type: ignore[arg-type]
    if level >= AccessLevel.REPORTER:
        return True
    visible = (
        project.visibility_level == VisibilityLevel.PUBLIC
        or (project.visibility_level == VisibilityLevel.INTERNAL and user is not None and not user.external)
        or level >= AccessLevel.GUEST
    )
    return visible and project.public_builds


async def job_token_allowed(session: AsyncSession, source_project_id: int, target: Project) -> bool:
    """The target project's inbound CI/CD job token allowlist."""
    if source_project_id == target.id:
        return True
    enabled = (
        await session.exec(
            select(ProjectCiCdSetting.job_token_scope_enabled).where(ProjectCiCdSetting.project_id == target.id)
        )
    ).first()
    if enabled is False:
        return True
    link = await session.exec(
        select(JobTokenProjectScopeLink.id).where(
            JobTokenProjectScopeLink.source_project_id == target.id,
            JobTokenProjectScopeLink.target_project_id == source_project_id,
            JobTokenProjectScopeLink.direction == INBOUND,
        )
    )
    return link.first() is not None

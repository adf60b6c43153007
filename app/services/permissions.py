"""The slice of GitLab's ``ProjectPolicy`` artifact downloads depend on: ``read_build``,
and the CI/CD job token's inbound allowlist. Pure rules; callers fetch the facts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import AccessLevel, Namespace, VisibilityLevel

INBOUND = 1


@dataclass(frozen=True)
class Reader:
    """Who asks: the user's flags and their access level on the project."""

    admin: bool
    external: bool
    active: bool
    access_level: int


def can_read_build(reader: Reader, visibility_level: int, public_builds: bool) -> bool:
    """Reporters and up always; guests, and everyone who can see the project, only with
    "Public pipelines" (``public_builds``); admins always; blocked users never."""
    if not reader.active:
        return False
    if reader.admin or reader.access_level >= AccessLevel.REPORTER:
        return True
    visible = (
        visibility_level == VisibilityLevel.PUBLIC
        or (visibility_level == VisibilityLevel.INTERNAL and not reader.external)
        or reader.access_level >= AccessLevel.GUEST
    )
    return visible and public_builds


def job_token_allowed(
    source_project_id: int, target_project_id: int, scope_enabled: bool | None, allowlisted: bool
) -> bool:
    """A job token reaches its own project, or one whose inbound allowlist names its project
    (or whose allowlist is switched off)."""
    return source_project_id == target_project_id or scope_enabled is False or allowlisted


async def namespace_ancestry(session: AsyncSession, namespace_id: int) -> list[int]:
    """The namespace and its parents, nearest first (``closest_setting`` walks this order)."""
    ids: list[int] = []
    current: int | None = namespace_id
    while current is not None and current not in ids:
        ids.append(current)
        current = (await session.exec(select(Namespace.parent_id).where(Namespace.id == current))).first()
    return ids

"""The slice of GitLab's ``ProjectPolicy`` artifact downloads, git fetches and pipelines
depend on: ``read_build``, ``read_project``, ``download_code``, ``create_pipeline``,
``destroy_pipeline``, ``Ci::BuildPolicy``'s ``erase_build`` and the CI/CD job token's inbound
allowlist. Pure rules; callers fetch the facts (``reader_for`` gathers a user's)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import AccessLevel, Member, Namespace, Project, User, VisibilityLevel

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


# --- repositories (``download_code``, ``build_download_code``, ``push_code``) ------------


def can_read_project(reader: Reader | None, visibility_level: int) -> bool:
    """``read_project``: anyone on a public project; members, admins and (on internal
    projects) every non-external user otherwise. ``None`` is the anonymous visitor."""
    if reader is not None and not reader.active:
        return False
    if visibility_level == VisibilityLevel.PUBLIC:
        return True
    if reader is None:
        return False
    return (
        reader.admin
        or reader.access_level >= AccessLevel.GUEST
        or (visibility_level == VisibilityLevel.INTERNAL and not reader.external)
    )


def can_download_code(reader: Reader | None, visibility_level: int) -> bool:
    """``download_code``: as ``read_project``, but guests of a private project may not."""
    if not can_read_project(reader, visibility_level):
        return False
    if visibility_level != VisibilityLevel.PRIVATE or reader is None:
        return True
    return reader.admin or reader.access_level >= AccessLevel.REPORTER


def can_build_download_code(reader: Reader | None, visibility_level: int) -> bool:
    """``build_download_code`` (a job token's fetch): ``download_code`` without the admin
    exemption (GitLab grants it to members, not to admins as such)."""
    if reader is not None and reader.admin:
        reader = Reader(admin=False, external=reader.external, active=reader.active, access_level=reader.access_level)
    return can_download_code(reader, visibility_level)


def can_push_code(reader: Reader | None) -> bool:
    """``push_code``: developers and up, and admins (protected branches are not modelled)."""
    return reader is not None and reader.active and (reader.admin or reader.access_level >= AccessLevel.DEVELOPER)


async def reader_for(session: AsyncSession, user: User, project: Project) -> Reader:
    """The user's flags and highest membership on the project or any namespace above it;
    the owner of a personal namespace is its projects' owner."""
    namespace = await session.get(Namespace, project.namespace_id)
    owner = namespace is not None and namespace.type == "User" and namespace.owner_id == user.id
    ancestry = await namespace_ancestry(session, project.namespace_id)
    query = select(func.max(Member.access_level)).where(
        Member.user_id == user.id,
        or_(
            and_(Member.source_type == "Project", Member.source_id == project.id),
            and_(Member.source_type == "Namespace", col(Member.source_id).in_(ancestry)),
        ),
    )
    level = (await session.exec(query)).first() or 0
    return Reader(
        admin=user.admin,
        external=user.external,
        active=user.state == "active",
        access_level=AccessLevel.OWNER if owner else level,
    )


def can_create_pipeline(reader: Reader) -> bool:
    """``create_pipeline``: developers and up (protected refs aside)."""
    return reader.active and (reader.admin or reader.access_level >= AccessLevel.DEVELOPER)


def can_destroy_pipeline(reader: Reader) -> bool:
    """``destroy_pipeline``: ``owner_access`` only (the project's owner, a group owner, admins)."""
    return reader.active and (reader.admin or reader.access_level >= AccessLevel.OWNER)


def can_erase_build(reader: Reader, owner_of_job: bool) -> bool:
    """``Ci::BuildPolicy`` ``erase_build``: ``admin_build`` (maintainers and up), or ``update_build``
    (developers) on a job the user triggered (``owner_of_job``); protected refs are not modelled."""
    if not reader.active:
        return False
    if reader.admin or reader.access_level >= AccessLevel.MAINTAINER:
        return True
    return owner_of_job and reader.access_level >= AccessLevel.DEVELOPER

"""``find_project!`` and the slice of ``ProjectPolicy`` / ``Ci::BuildPolicy`` the jobs API asks.

The facts (project, namespace chain, the asker's access level) are fetched once per request
into a ``ProjectAccess``; each ability is then a pure rule, as in ``permissions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.api_guard import ApiUser
from app.errors import forbidden, not_found
from app.models import (
    Accessibility,
    AccessLevel,
    JobTokenProjectScopeLink,
    Namespace,
    Project,
    ProjectCiCdSetting,
    record_id,
)
from app.policies.project_policy import (
    INBOUND,
    Reader,
    can_destroy_pipeline,
    can_erase_build,
    can_read_build,
    can_read_project,
    job_token_allowed,
    reader_for,
)
from app.presenters.build_runner_presenter import namespace_chain

INTEGER_ID = re.compile(r"^-?\d+$")
ANONYMOUS = Reader(admin=False, external=False, active=True, access_level=AccessLevel.NO_ACCESS)


@dataclass(frozen=True)
class ProjectAccess:
    """A project as one asker sees it."""

    project: Project
    full_path: str
    current: ApiUser | None
    reader: Reader  # an anonymous asker reads as an active non-member

    @property
    def project_id(self) -> int:
        assert self.project.id is not None
        return self.project.id

    def can_read_project(self) -> bool:
        return can_read_project(self.reader if self.current is not None else None, self.project.visibility_level)

    def can_read_build(self) -> bool:
        """``read_build`` (and ``read_pipeline``, which follows the same rule for jobs)."""
        return self.can_read_project() and can_read_build(
            self.reader, self.project.visibility_level, self.project.public_builds
        )

    def has_access(self, level: AccessLevel) -> bool:
        """``developer_access``, ``maintainer_access``...: admins have every level."""
        return self.reader.active and (self.reader.admin or self.reader.access_level >= level)

    def can_update_build(self) -> bool:
        return self.has_access(AccessLevel.DEVELOPER)

    def can_destroy_artifacts(self) -> bool:
        return self.has_access(AccessLevel.MAINTAINER)

    def can_destroy_pipeline(self) -> bool:
        return can_destroy_pipeline(self.reader)

    def can_erase_build(self, job_user_id: int | None) -> bool:
        """``erase_build`` on a job: ``owner_of_job`` is ``triggered_by?(current_user)``."""
        user_id = self.current.user.id if self.current is not None else None
        return can_erase_build(self.reader, user_id is not None and job_user_id == user_id)

    def can_read_job_artifacts(self, accessibility: int | None) -> bool:
        """``read_job_artifacts`` on a build, by its archive's ``accessibility`` (a job without
        an archive counts as public, as ``artifacts_public?`` says)."""
        if not self.can_read_build() or accessibility == Accessibility.none:
            return False
        return accessibility in (None, Accessibility.public) or self.has_access(AccessLevel.DEVELOPER)

    def can_read_statistics(self) -> bool:
        """``read_statistics`` (``reporter_access``): reporters and up, and admins."""
        return self.has_access(AccessLevel.REPORTER)


async def _project_by_full_path(session: AsyncSession, full_path: str) -> Project | None:
    """Routes are case-insensitive in GitLab: walk the namespaces part by part."""
    *namespace_parts, project_path = full_path.split("/")
    parent_id: int | None = None
    for part in namespace_parts:
        query = select(Namespace.id).where(
            func.lower(Namespace.path) == part.lower(), col(Namespace.parent_id).is_(parent_id)
        )
        parent_id = (await session.exec(query)).first()
        if parent_id is None:
            return None
    query = select(Project).where(Project.namespace_id == parent_id, func.lower(Project.path) == project_path.lower())
    return (await session.exec(query)).first()


async def _job_token_reaches(session: AsyncSession, source_project_id: int, project: Project) -> bool:
    setting = (
        await session.exec(
            select(ProjectCiCdSetting.job_token_scope_enabled).where(ProjectCiCdSetting.project_id == project.id)
        )
    ).first()
    link = await session.exec(
        select(JobTokenProjectScopeLink.id).where(
            JobTokenProjectScopeLink.source_project_id == project.id,
            JobTokenProjectScopeLink.target_project_id == source_project_id,
            JobTokenProjectScopeLink.direction == INBOUND,
        )
    )
    return job_token_allowed(source_project_id, project.id, setting, link.first() is not None)


async def lookup_project(session: AsyncSession, id_param: str) -> Project | None:
    """``find_project``: a numeric id or a full path; projects being deleted are not found."""
    project: Project | None = None
    if INTEGER_ID.match(id_param):
        project = await session.get(Project, record_id(int(id_param)))
    elif "/" in id_param:
        project = await _project_by_full_path(session, id_param)
    return None if project is None or project.pending_delete else project


async def find_project(session: AsyncSession, id_param: str, current: ApiUser | None) -> ProjectAccess:
    """``find_project!``: 404 ``Project Not Found`` when missing or unreadable, or 403 naming
    both projects when a job token may not reach it."""
    project = await lookup_project(session, id_param)
    if project is None:
        raise not_found("Project")
    chain = await namespace_chain(session, project.namespace_id)
    full_path = "/".join([*(ns.path for ns in chain), project.path])
    reader = await reader_for(session, current.user, project) if current else ANONYMOUS
    access = ProjectAccess(project, full_path, current, reader)
    job = current.job if current else None
    reachable = job is None or await _job_token_reaches(session, job.project_id, project)
    if not access.can_read_project() or not reachable:
        if job is not None:
            source = await session.get(Project, job.project_id)
            raise forbidden(
                f"Authentication by CI/CD job token not allowed from {source.path if source else ''} to {project.path}."
            )
        raise not_found("Project")
    return access


async def full_paths(session: AsyncSession, project_ids: set[int]) -> dict[int, str]:
    """``project.full_path`` of each project (namespaces fetched once each, whatever the count)."""
    if not project_ids:
        return {}
    projects = (await session.exec(select(Project).where(col(Project.id).in_(project_ids)))).all()
    namespaces: dict[int, Namespace] = {}
    wanted = {p.namespace_id for p in projects}
    while wanted:
        found = (await session.exec(select(Namespace).where(col(Namespace.id).in_(wanted)))).all()
        namespaces.update({ns.id: ns for ns in found if ns.id is not None})
        wanted = {ns.parent_id for ns in found if ns.parent_id is not None and ns.parent_id not in namespaces}

    def path_of(namespace_id: int | None) -> list[str]:
        parts: list[str] = []
        while namespace_id is not None and namespace_id in namespaces and len(parts) < 100:
            parts.insert(0, namespaces[namespace_id].path)
            namespace_id = namespaces[namespace_id].parent_id
        return parts

    return {p.id: "/".join([*path_of(p.namespace_id), p.path]) for p in projects if p.id is not None}

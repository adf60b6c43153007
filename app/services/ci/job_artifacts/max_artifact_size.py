"""The largest artifact a job may upload (``Ci::JobArtifact.max_artifact_size``)."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import ApplicationSetting, FileType, Namespace, PlanLimits, Project
from app.policies.project_policy import namespace_ancestry

MEGABYTE = 1024 * 1024


async def application_settings(session: AsyncSession) -> ApplicationSetting:
    settings = (await session.exec(select(ApplicationSetting).order_by(ApplicationSetting.id))).first()
    return settings or ApplicationSetting()


async def closest_max_artifacts_size(session: AsyncSession, project: Project) -> int:
    """``closest_setting(:max_artifacts_size)``: project, then nearest group, then instance."""
    if project.max_artifacts_size:
        return project.max_artifacts_size
    for namespace_id in await namespace_ancestry(session, project.namespace_id):
        size = (await session.exec(select(Namespace.max_artifacts_size).where(Namespace.id == namespace_id))).first()
        if size:
            return size
    return (await application_settings(session)).max_artifacts_size


async def max_artifact_size(session: AsyncSession, project: Project, file_type: FileType) -> int:
    """Bytes: the smallest positive of the plan limit for the type and the closest setting."""
    limits = (await session.exec(select(PlanLimits))).first()
    plan = getattr(limits, f"ci_max_artifact_size_{file_type.name}", 0) if limits else 0
    closest = await closest_max_artifacts_size(session, project)
    positive = [v for v in (plan, closest) if v and v > 0]
    return min(positive) * MEGABYTE if positive else 0

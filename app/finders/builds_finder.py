"""``Ci::Build.with_downloadable_artifacts`` and the administrator page's "List projects and
builds with artifacts with a specific expiration (or no expiration)": builds whose artifacts
never expire (``artifacts_expire_at: nil``), or expire after a time (``artifacts_expire_at > t``),
``limit(50)`` by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.finders.project_finder import full_paths
from app.models import DOWNLOADABLE_TYPES, Build, JobArtifact


def with_downloadable_artifacts() -> Any:
    """``where('EXISTS (?)', Ci::JobArtifact.select(1).where(job_id = ci_builds.id).where(file_type:
    DOWNLOADABLE_TYPES))``."""
    return exists().where(JobArtifact.job_id == Build.id, col(JobArtifact.file_type).in_(DOWNLOADABLE_TYPES))


@dataclass(frozen=True)
class BuildRow:
    id: int
    project_id: int
    full_path: str
    artifacts_expire_at: datetime | None


async def with_artifacts_expiring(session: AsyncSession, after: datetime | None, limit: int) -> list[BuildRow]:
    """``after`` None: artifacts that never expire; else those expiring after it. By id, as
    ``find_each`` walks them."""
    expiry = col(Build.artifacts_expire_at).is_(None) if after is None else col(Build.artifacts_expire_at) > after
    rows = (
        await session.exec(
            select(Build.id, Build.project_id, Build.artifacts_expire_at)
            .where(with_downloadable_artifacts(), expiry)
            .order_by(col(Build.id))
            .limit(limit)
        )
    ).all()
    paths = await full_paths(session, {pid for _, pid, _ in rows})
    return [BuildRow(bid, pid, paths.get(pid, ""), at) for bid, pid, at in rows]  # type: ignore[arg-type]

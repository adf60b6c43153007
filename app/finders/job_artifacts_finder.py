"""A project's artifacts, largest first: the administrator page's "List largest artifacts in a
single project" and "List artifacts in a single project" (``Ci::JobArtifact.where(project:)
.order(size: :desc).limit(n)``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import FileStore, FileType, JobArtifact
from app.uploaders.job_artifact_uploader import artifact_key


@dataclass(frozen=True)
class ArtifactRow:
    id: int
    job_id: int
    file_type: str
    size: int
    created_at: datetime
    expire_at: datetime | None
    file: str | None  # the uploaded file's name (``art.file`` prints the uploader's path)
    store: str  # local or remote (``file_store``)
    key: str  # where the bytes are: under the artifacts path, or in the bucket


async def largest_in_project(session: AsyncSession, project_id: int, limit: int) -> list[ArtifactRow]:
    rows = (
        await session.exec(
            select(JobArtifact)
            .where(JobArtifact.project_id == project_id)
            .order_by(col(JobArtifact.size).desc().nulls_last(), col(JobArtifact.id))
            .limit(limit)
        )
    ).all()
    return [
        ArtifactRow(
            id=a.id,  # type: ignore[arg-type]
            job_id=a.job_id,
            file_type=FileType(a.file_type).name if a.file_type in FileType._value2member_map_ else str(a.file_type),
            size=a.size or 0,
            created_at=a.created_at,
            expire_at=a.expire_at,
            file=a.file,
            store="remote" if a.file_store == FileStore.REMOTE else "local",
            key=artifact_key(a) if a.file or a.file_final_path else "",
        )
        for a in rows
    ]

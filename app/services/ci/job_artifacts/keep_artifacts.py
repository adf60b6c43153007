"""``Ci::Build#keep_artifacts!``: the job's artifacts never expire (the project jobs API's ``keep``)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Build, JobArtifact


async def keep_artifacts(session: AsyncSession, job: Build) -> None:
    """The job's ``artifacts_expire_at`` and every one of its artifacts' ``expire_at`` cleared.
    GitLab runs the two updates apart; here they commit together."""
    job.artifacts_expire_at = None
    session.add(job)
    await session.exec(  # type: ignore[call-overload]
        update(JobArtifact).where(JobArtifact.job_id == job.id).values(expire_at=None)
    )
    await session.commit()

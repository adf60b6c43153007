"""Job-token authentication as the runner API does it (``API::Ci::Helpers::Runner``).

Order and messages follow the newest GitLab: unknown job or token -> bare 403; then
deleted project, erased job, job not processing on runner, expired token.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.auth.auth_finders import token_digest
from app.errors import forbidden
from app.lib.tokens import secure_compare
from app.models import Build, BuildStatus, PersonalAccessToken, Project, User

PROCESSING = {BuildStatus.running, BuildStatus.canceling}


@dataclass(frozen=True)
class AuthenticatedJob:
    job: Build
    project: Project


def _job_forbidden(job: Build, reason: str):  # type: ignore[no-untyped-def]
    return forbidden(reason, headers={"Job-Status": job.status})


async def authenticate_job(session: AsyncSession, job_id: int, token: str) -> AuthenticatedJob:
    """``authenticate_job!``: the token must be this job's own, and the job processing."""
    job = await session.get(Build, job_id)
    if job is None or not token or not job.token or not secure_compare(token, job.token):
        raise forbidden()
    project = await session.get(Project, job.project_id)
    if project is None or project.pending_delete:
        raise forbidden("Project has been deleted!")
    if job.erased_at is not None:
        raise forbidden("Job has been erased!")
    if job.status not in PROCESSING:
        raise _job_forbidden(job, "Job is not processing on runner")
    if job.token_expires_at is not None and job.token_expires_at <= clock.now():
        raise _job_forbidden(job, "Job token has expired")
    return AuthenticatedJob(job, project)


async def active_personal_access_token(session: AsyncSession, token: str) -> PersonalAccessToken | None:
    """The token's row unless unknown, revoked or expired."""
    pat = (
        await session.exec(select(PersonalAccessToken).where(PersonalAccessToken.token_digest == token_digest(token)))
    ).first()
    if pat is None or pat.revoked or (pat.expires_at is not None and pat.expires_at <= clock.now()):
        return None
    return pat


async def user_from_personal_access_token(session: AsyncSession, token: str) -> User | None:
    pat = await active_personal_access_token(session, token)
    return None if pat is None else await session.get(User, pat.user_id)

"""Who may fetch a project's repository over HTTP, in GitLab's order and words.

``Repositories::GitHttpClientController#authenticate_user`` first (HTTP Basic: a running
job's token as ``gitlab-ci-token``, or a personal access token under any login; anonymous
fetches of public projects), then ``Gitlab::GitAccess#check``. Failures carry GitLab's
status and plain-text message; a 401 also carries the ``Basic realm="GitLab"`` challenge.

mockcoord's repositories are read-only: a push that GitLab would accept is refused with
GitLab's own message for an instance whose HTTP pushes are switched off.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.auth.runner_helpers import PROCESSING, active_personal_access_token
from app.config import Settings
from app.models import Build, JobTokenProjectScopeLink, Namespace, Project, ProjectCiCdSetting, User, VisibilityLevel
from app.policies.project_policy import (
    INBOUND,
    Reader,
    can_build_download_code,
    can_download_code,
    can_push_code,
    can_read_project,
    job_token_allowed,
    reader_for,
)
from app.services.git import repositories

UPLOAD_PACK = "git-upload-pack"  # fetch and clone
RECEIVE_PACK = "git-receive-pack"  # push
CI_JOB_USER = "gitlab-ci-token"
CHALLENGE = 'Basic realm="GitLab"'
HELP_PAGE = "/help/topics/git/troubleshooting_git.md#error-on-git-fetch-http-basic-access-denied"
ACCESS_DENIED = (
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect "
    "or you're required to use a token instead of a password. If a token was provided, it was either "
    "incorrect, expired, or improperly scoped. See {help_page_url}"
)
# Gitlab::GitAccess::ERROR_MESSAGES
AUTH_DOWNLOAD = "You are not allowed to download code."
AUTH_UPLOAD = "You are not allowed to upload code."
COMMAND_NOT_ALLOWED = "The command you're trying to execute is not allowed."
PROJECT_NOT_FOUND = "The project you were looking for could not be found or you don't have permission to view it."
JOB_TOKEN_FORBIDDEN = "Insufficient permissions to pull from the repository of project {target}."
JOB_TOKEN_NOT_ALLOWLISTED = "Authentication by CI/CD job token not allowed from {source} to {target}."
NO_REPO = "A repository for this project does not exist yet."
DOWNLOAD = "You are not allowed to download code from this project."
ARCHIVED = "You can't push code to an archived project."
PUSH_CODE = "You are not allowed to push code to this project."
PUSH_DISABLED = "Pushing over HTTP is not allowed."

# Gitlab::Auth: what a job token may do, and what each personal access token scope grants.
BUILD_ABILITIES = frozenset({"read_project", "build_download_code", "build_push_code"})
SCOPE_ABILITIES = {
    "api": {"read_project", "download_code", "push_code"},
    "read_api": {"read_project", "download_code"},
    "read_repository": {"download_code"},
    "write_repository": {"download_code", "push_code"},
    "ai_workflows": {"download_code", "push_code"},
}


class GitAccessDenied(Exception):
    """GitLab's refusal: ``status`` with a plain-text ``message``; 401s ask for Basic auth."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Actor:
    """``Gitlab::Auth::Result``: the user (None for anonymous or a job without one), what the
    credential allows, and the job whose token it was."""

    user: User | None
    abilities: frozenset[str]
    job: Build | None = None


ANONYMOUS = Actor(None, frozenset({"download_code"}))


def access_denied(server_url: str) -> GitAccessDenied:
    return GitAccessDenied(401, ACCESS_DENIED.format(help_page_url=server_url + HELP_PAGE))


async def find_project(session: AsyncSession, full_path: str) -> Project | None:
    """``Gitlab::RepoPath.parse``: the project at ``namespace/.../project``, case-insensitively;
    projects being deleted are gone already."""
    *namespaces, name = full_path.split("/")
    if not namespaces:
        return None
    parent_id: int | None = None
    for part in namespaces:
        query = select(Namespace.id).where(func.lower(Namespace.path) == part.lower(), Namespace.parent_id == parent_id)
        parent_id = (await session.exec(query)).first()
        if parent_id is None:
            return None
    query = select(Project).where(Project.namespace_id == parent_id, func.lower(Project.path) == name.lower())
    project = (await session.exec(query)).first()
    return None if project is None or project.pending_delete else project


async def _job_token_actor(session: AsyncSession, token: str) -> Actor | None:
    """``build_access_token_check``: a running, unerased job with an unexpired token, whose
    project exists and whose user (if any) is active."""
    job = (await session.exec(select(Build).where(Build.token == token))).first()
    if job is None or job.status not in PROCESSING or job.erased_at is not None:
        return None
    if job.token_expires_at is not None and job.token_expires_at <= clock.now():
        return None
    project = await session.get(Project, job.project_id)
    if project is None or project.pending_delete:
        return None
    user = await session.get(User, job.user_id) if job.user_id else None
    if job.user_id and (user is None or user.state != "active"):
        return None
    return Actor(user, BUILD_ABILITIES, job)


async def _personal_token_actor(session: AsyncSession, token: str) -> Actor | None:
    """``personal_access_token_check``: any login; the token's scopes decide the abilities."""
    pat = await active_personal_access_token(session, token)
    if pat is None:
        return None
    user = await session.get(User, pat.user_id)
    if user is None or user.state != "active":
        return None
    abilities: set[str] = set()
    for scope in pat.scopes or []:
        abilities |= SCOPE_ABILITIES.get(scope, set())
    return Actor(user, frozenset(abilities))


async def authenticate(session: AsyncSession, login: str, password: str) -> Actor | None:
    """``Gitlab::Auth.find_for_git_client``, for the credentials mockcoord knows."""
    if not password:
        return None
    if login == CI_JOB_USER and (actor := await _job_token_actor(session, password)) is not None:
        return actor
    return await _personal_token_actor(session, password)


async def _job_token_scope_allows(session: AsyncSession, job: Build, project: Project) -> bool:
    setting = (
        await session.exec(select(ProjectCiCdSetting).where(ProjectCiCdSetting.project_id == project.id))
    ).first()
    link = (
        await session.exec(
            select(JobTokenProjectScopeLink.id).where(
                JobTokenProjectScopeLink.source_project_id == project.id,
                JobTokenProjectScopeLink.target_project_id == job.project_id,
                JobTokenProjectScopeLink.direction == INBOUND,
            )
        )
    ).first()
    return job_token_allowed(
        job.project_id, project.id, setting.job_token_scope_enabled if setting else None, link is not None
    )


async def check(
    session: AsyncSession, settings: Settings, actor: Actor, project: Project | None, command: str | None
) -> Project:
    """``Gitlab::GitAccess#check``: abilities, command, project, repository, then the action."""
    abilities = actor.abilities
    if command == UPLOAD_PACK and not abilities & {"download_code", "build_download_code"}:
        raise GitAccessDenied(403, AUTH_DOWNLOAD)
    if command == RECEIVE_PACK and not abilities & {"push_code", "build_push_code"}:
        raise GitAccessDenied(403, AUTH_UPLOAD)
    if command not in (UPLOAD_PACK, RECEIVE_PACK):
        raise GitAccessDenied(403, COMMAND_NOT_ALLOWED)
    if project is None:
        raise GitAccessDenied(404, PROJECT_NOT_FOUND)

    reader: Reader | None = await reader_for(session, actor.user, project) if actor.user else None
    public = project.visibility_level == VisibilityLevel.PUBLIC
    in_scope = actor.job is None or await _job_token_scope_allows(session, actor.job, project)
    if not public and not (actor.user is not None and in_scope and can_read_project(reader, project.visibility_level)):
        if actor.job is not None and actor.user is not None:  # user.from_ci_job_token?
            if in_scope:
                raise GitAccessDenied(403, JOB_TOKEN_FORBIDDEN.format(target=project.path))
            source = await session.get(Project, actor.job.project_id)
            raise GitAccessDenied(
                403, JOB_TOKEN_NOT_ALLOWLISTED.format(source=source.path if source else "", target=project.path)
            )
        raise GitAccessDenied(404, PROJECT_NOT_FOUND)
    if not await repositories.has_repository(settings, project.id):  # type: ignore[arg-type]
        raise GitAccessDenied(404, NO_REPO)

    if command == UPLOAD_PACK:
        allowed = (
            public  # guest_can_download?
            or (
                "build_download_code" in abilities
                and in_scope
                and can_build_download_code(reader, project.visibility_level)
            )
            or ("download_code" in abilities and can_download_code(reader, project.visibility_level))
        )
        if not allowed:
            raise GitAccessDenied(403, DOWNLOAD)
        return project
    if project.archived:
        raise GitAccessDenied(403, ARCHIVED)
    # build_push_code needs the project's "allow Git push requests" setting, off by default.
    if not ("push_code" in abilities and can_push_code(reader)):
        raise GitAccessDenied(403, PUSH_CODE)
    raise GitAccessDenied(403, PUSH_DISABLED)


async def authorize(
    session: AsyncSession,
    settings: Settings,
    credentials: tuple[str, str] | None,
    full_path: str,
    command: str | None,
    server_url: str,
) -> Project:
    """The project whose repository may be served, or ``GitAccessDenied``."""
    project = await find_project(session, full_path)
    if credentials is not None:
        actor = await authenticate(session, *credentials)
        if actor is None:
            raise access_denied(server_url)
    elif command == UPLOAD_PACK and project is not None and project.visibility_level == VisibilityLevel.PUBLIC:
        actor = ANONYMOUS  # http_download_allowed?
    else:
        raise access_denied(server_url)
    return await check(session, settings, actor, project, command)

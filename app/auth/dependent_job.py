"""``authenticate_job_via_dependent_job!`` for the runner's artifact download, in one query.

Downloads are the hot path (runners fetch every dependency of every job), so the token's
job, its user, the target job, project, namespace ancestry, membership, allowlist and the
archive row come back in a single round trip; the rules stay in ``permissions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, literal, or_, select
from sqlalchemy.sql import Select
from sqlmodel import SQLModel

from app import clock
from app.auth.auth_finders import Credentials
from app.auth.runner_helpers import PROCESSING, user_from_personal_access_token
from app.db import Database
from app.errors import forbidden, unauthorized
from app.instrumentation import note_step
from app.models import AccessLevel, FileType, JobArtifact
from app.policies.project_policy import INBOUND, Reader, can_read_build, job_token_allowed

T = SQLModel.metadata.tables
ARTIFACT_COLUMNS = [c.name for c in T["p_ci_job_artifacts"].columns]


def _statement() -> Select:
    builds, users, projects = T["p_ci_builds"], T["users"], T["projects"]
    namespaces, members = T["namespaces"], T["members"]
    settings, links, artifacts = (
        T["project_ci_cd_settings"],
        T["ci_job_token_project_scope_links"],
        T["p_ci_job_artifacts"],
    )
    source, target = builds.alias("source"), builds.alias("target")
    job_id = bindparam("job_id")

    start = (
        select(namespaces.c.id, namespaces.c.parent_id)
        .join(projects, projects.c.namespace_id == namespaces.c.id)
        .join(builds, builds.c.project_id == projects.c.id)
        .where(builds.c.id == job_id)
        .cte("ancestry", recursive=True)
    )
    parent = namespaces.alias("parent")
    ancestry = start.union_all(select(parent.c.id, parent.c.parent_id).join(start, parent.c.id == start.c.parent_id))
    access = (
        select(func.max(members.c.access_level))
        .where(
            members.c.user_id == users.c.id,
            or_(
                and_(members.c.source_type == "Project", members.c.source_id == projects.c.id),
                and_(members.c.source_type == "Namespace", members.c.source_id.in_(select(ancestry.c.id))),
            ),
        )
        .scalar_subquery()
    )
    allowlisted = (
        select(literal(1))
        .where(
            links.c.source_project_id == projects.c.id,
            links.c.target_project_id == source.c.project_id,
            links.c.direction == INBOUND,
        )
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            source.c.status.label("source_status"),
            source.c.erased_at.label("source_erased_at"),
            source.c.token_expires_at.label("source_token_expires_at"),
            source.c.project_id.label("source_project_id"),
            users.c.id.label("user_id"),
            users.c.admin,
            users.c.external,
            users.c.state,
            target.c.id.label("target_id"),
            target.c.project_id.label("target_project_id"),
            projects.c.visibility_level,
            projects.c.public_builds,
            namespaces.c.type.label("namespace_type"),
            namespaces.c.owner_id.label("namespace_owner_id"),
            access.label("access_level"),
            settings.c.job_token_scope_enabled,
            allowlisted.label("allowlisted"),
            *[artifacts.c[name].label(f"artifact_{name}") for name in ARTIFACT_COLUMNS],
        )
        .select_from(source)
        .join(users, users.c.id == source.c.user_id)
        .outerjoin(target, target.c.id == job_id)
        .outerjoin(projects, projects.c.id == target.c.project_id)
        .outerjoin(namespaces, namespaces.c.id == projects.c.namespace_id)
        .outerjoin(settings, settings.c.project_id == projects.c.id)
        .outerjoin(artifacts, and_(artifacts.c.job_id == target.c.id, artifacts.c.file_type == int(FileType.archive)))
        .where(source.c.token == bindparam("token"))
    )


STATEMENT = _statement()


@dataclass(frozen=True)
class Download:
    job_id: int
    archive: JobArtifact | None


async def authorize_download(db: Database, job_id: int, creds: Credentials) -> Download:
    """401 when the credential is no running job's token (or no valid token at all), 403
    when the job is unknown, unreadable for that user, or outside the token's reach."""
    if not creds.job_token:
        if creds.personal_access_token:
            async with db.session() as session:
                if await user_from_personal_access_token(session, creds.personal_access_token) is not None:
                    raise forbidden()  # authenticated, but not as a job
        raise unauthorized()
    note_step("Look up job for CI_JOB_TOKEN")
    async with db.reads.connect() as conn:
        row = (await conn.execute(STATEMENT, {"job_id": job_id, "token": creds.job_token})).first()
    if row is None or row.source_status not in PROCESSING or row.source_erased_at is not None:
        raise unauthorized()
    if row.source_token_expires_at is not None and row.source_token_expires_at <= clock.now():
        raise unauthorized()
    note_step("Find user who triggered job")
    if row.target_id is None:
        note_step(f"Find job {job_id}: not found")
        raise forbidden()
    owner = row.namespace_type == "User" and row.namespace_owner_id == row.user_id
    reader = Reader(
        admin=row.admin,
        external=row.external,
        active=row.state == "active",
        access_level=AccessLevel.OWNER if owner else (row.access_level or 0),
    )
    allowed = can_read_build(reader, row.visibility_level, row.public_builds)
    note_step(f"Does user have :read_build access? {'yes' if allowed else 'no'}")
    if not allowed:
        raise forbidden()
    if not job_token_allowed(
        row.source_project_id, row.target_project_id, row.job_token_scope_enabled, bool(row.allowlisted)
    ):
        note_step("Is the token's project on the job token allowlist? no")
        raise forbidden()
    archive = None
    if row.artifact_id is not None:
        archive = JobArtifact.model_construct(**{name: getattr(row, f"artifact_{name}") for name in ARTIFACT_COLUMNS})
    return Download(row.target_id, archive)

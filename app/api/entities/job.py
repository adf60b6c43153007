"""``API::Entities::Ci::Job`` and the entities it nests, key for key and in GitLab's order
(Grape exposes in declaration order: ``JobBasic`` first, then ``Job``).

What mockcoord has no data for is rendered as GitLab renders its absence: ``commit`` is null
(as when GitLab's ``project.commit(sha)`` finds nothing; not read from project repositories
yet), there are no runner managers, no coverage, and no archived jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app import clock
from app.api.entities.basic import pipeline_basic, user_basic
from app.finders.jobs_finder import JobRecord, artifacts_expired
from app.models import BuildStatus, FileFormat, FileType, JobArtifact, Pipeline, Runner, RunnerType, User

RUNNER_ONLINE_WINDOW = 2 * 3600  # ``Ci::Runner::ONLINE_CONTACT_TIMEOUT``
RUNNER_STALE_WINDOW = 7 * 24 * 3600  # ``Ci::Runner::STALE_TIMEOUT``


@dataclass(frozen=True)
class EntityContext:
    """What entities need besides the rows: the instance URL and the project's path."""

    base_url: str  # scheme://host[:port], GitLab's ``Gitlab.config.gitlab.url``
    project_full_path: str


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """``calculate_duration``: from start to end, or to now while it is still going."""
    if start is None:
        return None
    return ((end or clock.now()) - start).total_seconds()


def user_entity(user: User | None, ctx: EntityContext) -> dict[str, Any] | None:
    """``API::Entities::User`` (``UserSafe`` < ``UserBasic`` < ``User``) with empty profile fields."""
    basic = user_basic(user, ctx.base_url)
    if user is None or basic is None:
        return None
    return {
        **basic,
        "created_at": clock.iso(user.created_at),
        "bio": "",
        "location": "",
        "public_email": None,
        "skype": "",
        "linkedin": "",
        "twitter": "",
        "discord": "",
        "website_url": "",
        "organization": "",
        "job_title": "",
        "pronouns": None,
        "bot": False,
        "work_information": None,
        "followers": 0,
        "following": 0,
        "is_followed": False,
        "local_time": None,
    }


def pipeline_entity(pipeline: Pipeline, ctx: EntityContext) -> dict[str, Any]:
    return pipeline_basic(pipeline, ctx.base_url, ctx.project_full_path)


def _runner_status(runner: Runner) -> str:
    """``deprecated_rest_status``."""
    now = clock.now()
    if runner.contacted_at is None:
        stale = (now - runner.created_at).total_seconds() > RUNNER_STALE_WINDOW
        return "stale" if stale else "never_contacted"
    age = (now - runner.contacted_at).total_seconds()
    if age > RUNNER_STALE_WINDOW:
        return "stale"
    if not runner.active:
        return "paused"
    return "online" if age <= RUNNER_ONLINE_WINDOW else "offline"


def runner_entity(runner: Runner | None) -> dict[str, Any] | None:
    """``API::Entities::Ci::Runner``."""
    if runner is None:
        return None
    contacted = runner.contacted_at
    online = contacted is not None and (clock.now() - contacted).total_seconds() <= RUNNER_ONLINE_WINDOW
    return {
        "id": runner.id,
        "description": runner.description,
        "ip_address": None,
        "active": runner.active,
        "paused": not runner.active,
        "is_shared": runner.runner_type == RunnerType.instance_type,
        "runner_type": RunnerType(runner.runner_type).name,
        "name": None,
        "online": online,
        "status": _runner_status(runner),
    }


def artifact_entity(artifact: JobArtifact) -> dict[str, Any]:
    """``API::Entities::Ci::JobArtifact``."""
    return {
        "file_type": FileType(artifact.file_type).name,
        "size": artifact.size,
        "filename": artifact.file,
        "file_format": FileFormat(artifact.file_format).name if artifact.file_format else None,
    }


def job_entity(record: JobRecord, ctx: EntityContext) -> dict[str, Any]:
    """``API::Entities::Ci::Job``. ``artifacts_file`` is there only when ``artifacts?`` (an
    archive that has not expired); GitLab also HEADs the object for it, mockcoord trusts the row."""
    job = record.job
    entity: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "name": job.name,
        "ref": job.ref,
        "tag": job.tag,
        "coverage": None,
        "allow_failure": job.allow_failure,
        "created_at": clock.iso(job.created_at),
        "started_at": clock.iso(job.started_at),
        "finished_at": clock.iso(job.finished_at),
        "erased_at": clock.iso(job.erased_at),
        "duration": _seconds(job.started_at, job.finished_at),
        "queued_duration": _seconds(job.queued_at, job.started_at),
        "user": user_entity(record.user, ctx),
        "commit": None,
        "pipeline": pipeline_entity(record.pipeline, ctx),
    }
    if job.status == BuildStatus.failed:
        entity["failure_reason"] = job.failure_reason
    entity["web_url"] = f"{ctx.base_url}/{ctx.project_full_path}/-/jobs/{job.id}"
    entity["project"] = {"ci_job_token_scope_enabled": False}
    archive = record.archive
    if archive is not None and not artifacts_expired(job):
        entity["artifacts_file"] = {"filename": archive.file, "size": archive.size}
    entity["artifacts"] = [artifact_entity(a) for a in record.artifacts]
    entity["runner"] = runner_entity(record.runner)
    entity["runner_manager"] = None
    entity["artifacts_expire_at"] = clock.iso(job.artifacts_expire_at)
    entity["archived"] = False
    entity["tag_list"] = sorted((job.options or {}).get("tags") or [])
    return entity

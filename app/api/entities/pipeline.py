"""GitLab's pipeline entities (``Entities::Ci::PipelineBasic``, ``Pipeline``,
``PipelineWithMetadata``, ``PipelineBasicWithMetadata``), keys in GitLab's order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.api.entities.basic import pipeline_basic, user_basic
from app.models import Build, BuildStatus, Pipeline, Project, User, latest
from app.presenters.build_runner_presenter import namespace_chain

# Gitlab::Ci::Status::* for a pipeline: text, label, icon.
STATUS_DETAILS = {
    "created": ("Created", "created", "status_created"),
    "waiting_for_resource": ("Waiting", "waiting for resource", "status_pending"),
    "preparing": ("Preparing", "preparing", "status_preparing"),
    "waiting_for_callback": ("Waiting", "waiting for callback", "status_pending"),
    "pending": ("Pending", "pending", "status_pending"),
    "running": ("Running", "running", "status_running"),
    "success": ("Passed", "passed", "status_success"),
    "failed": ("Failed", "failed", "status_failed"),
    "canceling": ("Canceling", "canceling", "status_canceled"),
    "canceled": ("Canceled", "canceled", "status_canceled"),
    "skipped": ("Skipped", "skipped", "status_skipped"),
    "manual": ("Blocked", "waiting for manual action", "status_manual"),
    "scheduled": ("Delayed", "delayed", "status_scheduled"),
}


@dataclass(frozen=True)
class Presenter:
    """What every pipeline of one project is shown with."""

    server_url: str
    project: Project
    full_path: str

    @classmethod
    async def for_project(cls, session: AsyncSession, project: Project, server_url: str) -> Presenter:
        chain = await namespace_chain(session, project.namespace_id)
        return cls(server_url, project, "/".join([*(ns.path for ns in chain), project.path]))

    def web_path(self, pipeline: Pipeline) -> str:
        return f"/{self.full_path}/-/pipelines/{pipeline.id}"

    def basic(self, pipeline: Pipeline) -> dict[str, Any]:
        return pipeline_basic(pipeline, self.server_url, self.full_path)

    def basic_with_metadata(self, pipeline: Pipeline) -> dict[str, Any]:
        return {**self.basic(pipeline), "name": None}

    def user(self, user: User | None) -> dict[str, Any] | None:
        return user_basic(user, self.server_url)

    def detailed_status(self, pipeline: Pipeline, warnings: bool) -> dict[str, Any]:
        """``DetailedStatusEntity`` of ``pipeline.detailed_status``; a success with allowed
        failures is ``SuccessWarning``."""
        text, label, icon = STATUS_DETAILS.get(pipeline.status, (pipeline.status.title(), pipeline.status, "status"))
        group = pipeline.status
        if pipeline.status == BuildStatus.success and warnings:
            text, label, icon, group = "Warning", "passed with warnings", "status_warning", "success-with-warnings"
        return {
            "icon": icon,
            "text": text,
            "label": label,
            "group": group,
            "tooltip": label,
            "has_details": True,
            "details_path": self.web_path(pipeline),
            "illustration": None,
            "favicon": f"/assets/ci_favicons/favicon_{icon}.png",
        }

    def full(self, pipeline: Pipeline, user: User | None, warnings: bool) -> dict[str, Any]:
        """``Entities::Ci::Pipeline``."""
        queued = None
        if pipeline.started_at is not None:
            queued = int((pipeline.started_at - pipeline.created_at).total_seconds()) or None
        return {
            **self.basic(pipeline),
            "before_sha": pipeline.before_sha,
            "tag": pipeline.tag,
            "yaml_errors": None,
            "user": self.user(user),
            "started_at": clock.iso(pipeline.started_at),
            "finished_at": clock.iso(pipeline.finished_at),
            "committed_at": None,
            "duration": pipeline.duration,
            "queued_duration": queued,
            "coverage": None,
            "detailed_status": self.detailed_status(pipeline, warnings),
        }

    def with_metadata(self, pipeline: Pipeline, user: User | None, warnings: bool) -> dict[str, Any]:
        """``Entities::Ci::PipelineWithMetadata``."""
        return {**self.full(pipeline, user, warnings), "name": None}


async def has_warnings(session: AsyncSession, pipeline: Pipeline) -> bool:
    """``Ci::Pipeline#has_warnings?``: a job that failed but was allowed to."""
    query = select(func.count(col(Build.id))).where(
        Build.commit_id == pipeline.id,
        latest(),
        col(Build.allow_failure).is_(True),
        col(Build.status).in_([BuildStatus.failed, BuildStatus.canceled]),
    )
    return bool((await session.exec(query)).one())


async def pipeline_users(session: AsyncSession, pipelines: Sequence[Pipeline]) -> dict[int, User]:
    ids = {p.user_id for p in pipelines if p.user_id is not None}
    if not ids:
        return {}
    return {u.id: u for u in (await session.exec(select(User).where(col(User.id).in_(ids)))).all()}  # type: ignore[misc]

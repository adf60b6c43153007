"""``Ci::CreatePipelineService`` for ``source: api``: resolve the ref, read and check the
config, create the pipeline with its jobs (and their needs) in one transaction, process it.

Nothing is saved when the config is missing or invalid (``save_on_errors: false``, as the
API asks); the caller gets GitLab's first message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.lib import ci_config
from app.models import (
    ArtifactLocked,
    Build,
    BuildNeed,
    BuildStatus,
    Pipeline,
    PipelineVariable,
    Project,
    ProjectCiCdSetting,
    SchedulingType,
    User,
)
from app.services.ci.atomic_processing_service import process_pipeline
from app.services.ci.config_source import project_ci_config, resolve_ref
from app.services.ci.job_artifacts.max_artifact_size import application_settings
from app.services.git import repositories
from app.state import AppState

MISSING_CONFIG = "Missing CI config file"
REFERENCE_NOT_FOUND = "Reference not found"
VARIABLE_TYPES = {"env_var": 1, "file": 2}


class PipelineError(Exception):
    """Why no pipeline was created, in GitLab's words (``pipeline.errors[:base]``)."""


@dataclass(frozen=True)
class Variable:
    key: str
    value: str
    variable_type: str = "env_var"


async def latest_pipeline_locked(session: AsyncSession, project: Project) -> ArtifactLocked:
    """``Project#latest_pipeline_locked``: locked while the instance and the project both
    keep the latest artifacts."""
    keep = (await application_settings(session)).keep_latest_artifact
    setting = (
        await session.exec(
            select(ProjectCiCdSetting.keep_latest_artifact).where(ProjectCiCdSetting.project_id == project.id)
        )
    ).first()
    return ArtifactLocked.artifacts_locked if keep and setting is not False else ArtifactLocked.unlocked


async def next_pipeline_iid(session: AsyncSession, project_id: int) -> int:
    """GitLab's ``internal_ids``, simplified: one more than the project's highest."""
    current = (await session.exec(select(func.max(Pipeline.iid)).where(Pipeline.project_id == project_id))).one()
    return int(current or 0) + 1


async def create_pipeline(
    state: AppState,
    session: AsyncSession,
    project: Project,
    user: User,
    ref: str,
    variables: list[Variable] | None = None,
    source: str = "api",
) -> Pipeline:
    assert project.id is not None
    commit = await resolve_ref(session, state, project, ref)
    if commit is None:
        raise PipelineError(REFERENCE_NOT_FOUND)
    content = await project_ci_config(session, state, project, commit.sha)
    if content is None:
        raise PipelineError(MISSING_CONFIG)
    try:
        config = ci_config.process(content)
    except ci_config.ConfigError as exc:
        raise PipelineError(exc.errors[0]) from None

    pipeline = Pipeline(
        project_id=project.id,
        ref=ref,
        sha=commit.sha,
        tag=commit.tag,
        source=source,
        status=BuildStatus.created,
        locked=await latest_pipeline_locked(session, project),
        user_id=user.id,
    )
    session.add(pipeline)
    await session.flush()  # on SQLite this takes the write lock, so the iid below is unique
    assert pipeline.id is not None
    pipeline.iid = await next_pipeline_iid(session, project.id)
    for variable in variables or []:
        session.add(
            PipelineVariable(
                pipeline_id=pipeline.id,
                key=variable.key,
                value=variable.value,
                variable_type=VARIABLE_TYPES[variable.variable_type],
            )
        )
    for job_config in sorted(config.jobs, key=lambda j: j.stage_idx):
        job = Build(
            project_id=project.id,
            commit_id=pipeline.id,
            name=job_config.name,
            stage=job_config.stage,
            stage_idx=job_config.stage_idx,
            status=BuildStatus.created,
            user_id=user.id,
            ref=ref,
            tag=commit.tag,
            when=job_config.when,
            allow_failure=job_config.allow_failure,
            options=job_config.options,
            scheduling_type=SchedulingType.stage if job_config.needs is None else SchedulingType.dag,
        )
        session.add(job)
        await session.flush()
        for need in job_config.needs or ():
            session.add(BuildNeed(build_id=job.id, name=need.name, artifacts=need.artifacts, optional=need.optional))  # type: ignore[arg-type]
    await session.commit()
    await repositories.ensure_persistent_ref(state.settings, project.id, pipeline.id, commit.sha)
    processed = await process_pipeline(session, pipeline.id)
    assert processed is not None
    return processed

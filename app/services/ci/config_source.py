"""Where a pipeline's ref and ``.gitlab-ci.yml`` come from (``Gitlab::Ci::Pipeline::Chain::
Config::Content``). A project with a repository resolves refs in it and reads
``.gitlab-ci.yml`` at the pipeline's commit, unless a config is stored for the project
(scenario ``ci_config`` or ``PUT /-/mock/projects/:id/ci_config``), which wins, as a
project's custom CI config path would. Without a repository every ref resolves and the
stored config is the only one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.lib import ci_config
from app.models import Project, ProjectCiConfig
from app.services.git import repositories
from app.state import AppState


@dataclass(frozen=True)
class RefCommit:
    sha: str
    tag: bool = False


async def resolve_ref(session: AsyncSession, state: AppState, project: Project, ref: str) -> RefCommit | None:
    """The commit ``ref`` points at, or None ('Reference not found'). Without a repository
    every non-empty ref is a branch whose sha is derived from the project and the ref, so
    pipelines of one ref share a sha as pipelines of one commit do."""
    if not ref.strip():
        return None
    assert project.id is not None
    if await repositories.has_repository(state.settings, project.id):
        found = await repositories.ref_commit(state.settings, project.id, ref)
        return RefCommit(sha=found[0], tag=found[1]) if found else None
    return RefCommit(sha=hashlib.sha1(f"{project.id}:{ref}".encode()).hexdigest())


async def project_ci_config(session: AsyncSession, state: AppState, project: Project, sha: str) -> str | None:
    """The ``.gitlab-ci.yml`` text at ``sha``, or None ('Missing CI config file')."""
    query = select(ProjectCiConfig.content).where(ProjectCiConfig.project_id == project.id)
    stored = (await session.exec(query)).first()
    if stored is not None or project.id is None:
        return stored
    blob = await repositories.read_blob(state.settings, project.id, sha, repositories.CONFIG_PATH)
    return blob.decode(errors="replace") if blob is not None else None


async def store_ci_config(session: AsyncSession, project: Project, content: str | None) -> None:
    """Replace the project's stored config, or remove it with None (the caller commits)."""
    assert project.id is not None
    row = (await session.exec(select(ProjectCiConfig).where(ProjectCiConfig.project_id == project.id))).first()
    if content is None:
        if row is not None:
            await session.delete(row)
        return
    if row is None:
        row = ProjectCiConfig(project_id=project.id, content=content)
    row.content = content
    row.updated_at = clock.now()
    session.add(row)


async def set_project_ci_config(
    session: AsyncSession, project: Project, value: str | dict[str, Any]
) -> ci_config.CiConfig:
    """Check a config (YAML text, or a mapping kept as YAML) and store it; ``ConfigError``
    with GitLab's messages when it is not valid, and nothing stored."""
    content = value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False)
    config = ci_config.process(content)
    await store_ci_config(session, project, content)
    return config

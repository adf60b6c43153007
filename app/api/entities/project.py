"""``API::Entities::BasicProjectDetails``, ``Project``, ``ProjectWithAccess`` and
``ProjectStatistics``, keys in GitLab's order.

A subset of GitLab's project entity: every key of ``BasicProjectDetails``, then the keys of
``Project`` that mockcoord has data for (visibility, archived, jobs, artifacts, statistics), then
``permissions``. Features mockcoord does not have (issues, merge requests, wiki, registry...)
are left out rather than invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app import clock
from app.api.entities.basic import user_basic
from app.models import Namespace, Project, ProjectCiCdSetting, ProjectStatistics, User, VisibilityLevel

VISIBILITY = {
    VisibilityLevel.PRIVATE: "private",
    VisibilityLevel.INTERNAL: "internal",
    VisibilityLevel.PUBLIC: "public",
}


@dataclass(frozen=True)
class ProjectFacts:
    """What the entity renders, fetched by the route."""

    project: Project
    chain: list[Namespace]  # root first
    owner: User | None  # the personal namespace's owner
    default_branch: str | None
    ci_cd: ProjectCiCdSetting | None
    statistics: ProjectStatistics | None

    @property
    def full_path(self) -> str:
        return "/".join([*(ns.path for ns in self.chain), self.project.path])


def project_statistics(stats: ProjectStatistics | None) -> dict[str, int]:
    """``API::Entities::ProjectStatistics``: ``build_artifacts_size`` is exposed as
    ``job_artifacts_size``; mockcoord keeps no repository, wiki, LFS, package, snippet, upload or
    registry usage, so those read 0."""
    artifacts = stats.build_artifacts_size if stats else 0
    return {
        "commit_count": 0,
        "storage_size": stats.storage_size if stats else 0,
        "repository_size": 0,
        "wiki_size": 0,
        "lfs_objects_size": 0,
        "job_artifacts_size": artifacts,
        "pipeline_artifacts_size": 0,
        "packages_size": 0,
        "snippets_size": 0,
        "uploads_size": 0,
        "container_registry_size": 0,
    }


def _namespace(ns: Namespace, chain: list[Namespace], base_url: str) -> dict[str, Any]:
    """``API::Entities::NamespaceBasic``."""
    full_path = "/".join(n.path for n in chain[: chain.index(ns) + 1])
    kind = "user" if ns.type == "User" else "group"
    return {
        "id": ns.id,
        "name": ns.name,
        "path": ns.path,
        "kind": kind,
        "full_path": full_path,
        "parent_id": ns.parent_id,
        "avatar_url": None,
        "web_url": f"{base_url}/{full_path}" if kind == "user" else f"{base_url}/groups/{full_path}",
    }


def basic_project_details(facts: ProjectFacts, base_url: str) -> dict[str, Any]:
    """``API::Entities::BasicProjectDetails`` (``ProjectIdentity`` first)."""
    project, full_path = facts.project, facts.full_path
    host = urlsplit(base_url).hostname or "localhost"
    return {
        "id": project.id,
        "description": None,
        "name": project.name,
        "name_with_namespace": " / ".join([*(ns.name for ns in facts.chain), project.name]),
        "path": project.path,
        "path_with_namespace": full_path,
        "created_at": clock.iso(project.created_at),
        "default_branch": facts.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": f"git@{host}:{full_path}.git",
        "http_url_to_repo": f"{base_url}/{full_path}.git",
        "web_url": f"{base_url}/{full_path}",
        "readme_url": None,
        "forks_count": 0,
        "avatar_url": None,
        "star_count": 0,
        "last_activity_at": clock.iso(project.created_at),
        "namespace": _namespace(facts.chain[-1], facts.chain, base_url),
    }


def project_with_access(
    facts: ProjectFacts,
    base_url: str,
    *,
    statistics: bool,
    can_admin: bool,
    permissions: dict[str, Any],
) -> dict[str, Any]:
    """``API::Entities::ProjectWithAccess``: ``Project`` (a subset) and ``permissions``.
    ``statistics``: asked for and allowed (``read_statistics``)."""
    project = facts.project
    api = f"{base_url}/api/v4/projects/{project.id}"
    body = basic_project_details(facts, base_url)
    body["_links"] = {
        "self": api,
        "repo_branches": f"{api}/repository/branches",
        "labels": f"{api}/labels",
        "events": f"{api}/events",
        "members": f"{api}/members",
        "cluster_agents": f"{api}/cluster_agents",
    }
    body["empty_repo"] = facts.default_branch is None
    body["archived"] = project.archived
    body["visibility"] = VISIBILITY.get(VisibilityLevel(project.visibility_level), "private")
    if facts.chain[-1].type == "User":
        body["owner"] = user_basic(facts.owner, base_url)
    body["jobs_enabled"] = True
    body["builds_access_level"] = "enabled"
    body["shared_runners_enabled"] = True
    body["creator_id"] = facts.owner.id if facts.owner else None
    body["import_status"] = "none"
    body["updated_at"] = clock.iso(project.created_at)
    if can_admin:
        body["keep_latest_artifact"] = facts.ci_cd.keep_latest_artifact if facts.ci_cd else True
        body["ci_job_token_scope_enabled"] = facts.ci_cd.job_token_scope_enabled if facts.ci_cd else True
    body["ci_config_path"] = None
    body["public_jobs"] = project.public_builds
    body["shared_with_groups"] = []
    if statistics:
        body["statistics"] = project_statistics(facts.statistics)
    body["max_artifacts_size"] = project.max_artifacts_size
    body["permissions"] = permissions
    return body

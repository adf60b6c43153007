"""The job a runner receives from ``POST /jobs/request`` (``Entities::Ci::JobRequest::Response``
over ``Ci::BuildRunnerPresenter``): GitLab's keys, in GitLab's order, with GitLab's defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.config import Settings
from app.models import (
    Build,
    BuildNeed,
    BuildStatus,
    FileType,
    JobArtifact,
    JobVariable,
    Namespace,
    Pipeline,
    PipelineVariable,
    Project,
    Runner,
    SchedulingType,
    User,
    VisibilityLevel,
    latest,
    required_format,
)
from app.services.git import repositories

DEFAULT_TIMEOUT = 3600  # a project's build_timeout default
DEFAULT_GIT_DEPTH = 20  # ci_default_git_depth of new projects
MAX_COMMIT_MESSAGE_SIZE = 100_000  # Builder::Pipeline::MAX_COMMIT_MESSAGE_SIZE_IN_BYTES
# Ci::Build.failure_reasons (CE enum) keys, as ``features.failure_reasons``.
FAILURE_REASONS = [
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
    "forward_deployment_failure",
    "user_blocked",
    "project_deleted",
    "ci_quota_exceeded",
    "pipeline_loop_detected",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "insufficient_bridge_permissions",
    "downstream_bridge_project_not_found",
    "invalid_bridge_trigger",
    "bridge_pipeline_is_child_pipeline",
    "downstream_pipeline_creation_failed",
    "secrets_provider_not_found",
    "reached_max_descendant_pipelines_depth",
]
# GitLab's token prefixes (the runner honours at most 10).
TOKEN_MASK_PREFIXES = [
    "glpat-",
    "gloas-",
    "gldt-",
    "glrt-",
    "glcbt-",
    "glptt-",
    "glft-",
    "glimt-",
    "glagent-",
    "glsoat-",
]
# Enums::Ci::JobArtifact.default_file_names, for reports.
REPORT_FILE_NAMES = {
    "junit": "junit.xml",
    "accessibility": "gl-accessibility.json",
    "codequality": "gl-code-quality-report.json",
    "sast": "gl-sast-report.json",
    "secret_detection": "gl-secret-detection-report.json",
    "dependency_scanning": "gl-dependency-scanning-report.json",
    "container_scanning": "gl-container-scanning-report.json",
    "cluster_image_scanning": "gl-cluster-image-scanning-report.json",
    "dast": "gl-dast-report.json",
    "license_scanning": "gl-license-scanning-report.json",
    "performance": "performance.json",
    "browser_performance": "browser-performance.json",
    "load_performance": "load-performance.json",
    "metrics": "metrics.txt",
    "lsif": "lsif.json",
    "dotenv": ".env",
    "cobertura": "cobertura-coverage.xml",
    "jacoco": "jacoco.xml",
    "terraform": "tfplan.json",
    "cluster_applications": "gl-cluster-applications.json",
    "requirements": "requirements.json",
    "requirements_v2": "requirements_v2.json",
    "coverage_fuzzing": "gl-coverage-fuzzing.json",
    "api_fuzzing": "gl-api-fuzzing-report.json",
    "cyclonedx": "gl-sbom.cdx.json",
    "annotations": "gl-annotations.json",
    "repository_xray": "gl-repository-xray.json",
}


@dataclass(frozen=True)
class ServerURL:
    """Where the runner reached us: ``CI_SERVER_URL`` and the repository URL are built from it."""

    scheme: str
    host: str  # host[:port] as the request's Host header gave it

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def hostname(self) -> str:
        return self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host

    @property
    def port(self) -> str:
        if ":" in self.host and not self.host.endswith("]"):
            return self.host.rsplit(":", 1)[1]
        return "443" if self.scheme == "https" else "80"


def slugify(value: str) -> str:
    """``Gitlab::Utils.slugify``: lower case, [a-z0-9] kept, the rest '-', 63 characters."""
    return re.sub(r"[^a-z0-9]", "-", value.lower())[:63].strip("-")


def _variable(
    key: str, value: object, *, public: bool = True, masked: bool = False, file: bool = False
) -> dict[str, Any]:
    # Collection::Item#to_runner_variable: `file` and `raw` are only sent when true.
    variable: dict[str, Any] = {"key": key, "value": "" if value is None else str(value), "public": public}
    if file:
        variable["file"] = True
    variable["masked"] = masked
    return variable


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


async def namespace_chain(session: AsyncSession, namespace_id: int) -> list[Namespace]:
    """The project's namespace and its ancestors, root first."""
    chain: list[Namespace] = []
    current: int | None = namespace_id
    while current is not None:
        ns = await session.get(Namespace, current)
        if ns is None:
            break
        chain.insert(0, ns)
        current = ns.parent_id
    return chain


def timeout_value(job: Build, runner: Runner | None) -> int:
    """``Ci::Build#timeout_value``: the job's timeout or the project's, capped by the runner's."""
    options = job.options or {}
    timeout = int(options.get("job_timeout") or DEFAULT_TIMEOUT)
    if runner is not None and runner.maximum_timeout:
        timeout = min(timeout, runner.maximum_timeout)
    return timeout


def steps(job: Build, timeout: int) -> list[dict[str, Any]]:
    """``Gitlab::Ci::Build::Step``: before_script + script, then after_script if any."""
    options = job.options or {}
    script = [*(options.get("before_script") or []), *(options.get("script") or [])]
    result = [{"name": "script", "script": script, "timeout": timeout, "when": "on_success", "allow_failure": False}]
    if options.get("after_script"):
        result.append(
            {
                "name": "after_script",
                "script": list(options["after_script"]),
                "timeout": timeout,
                "when": "always",
                "allow_failure": True,
            }
        )
    return result


def artifacts(job: Build) -> list[dict[str, Any]] | None:
    """``BuildRunnerPresenter#artifacts``: the archive (if paths or untracked), then each report."""
    spec = (job.options or {}).get("artifacts")
    if not spec:
        return None
    entries: list[dict[str, Any]] = []
    if spec.get("untracked") or spec.get("paths"):
        archive: dict[str, Any] = {"name": spec.get("name")}
        if spec.get("untracked") is not None:
            archive["untracked"] = spec["untracked"]
        archive["paths"] = spec.get("paths")
        if spec.get("exclude"):
            archive["exclude"] = spec["exclude"]
        archive.update(
            when=spec.get("when"), expire_in=spec.get("expire_in"), artifact_type="archive", artifact_format="zip"
        )
        entries.append(archive)
    for report_type, paths in (spec.get("reports") or {}).items():
        entries.append(
            {
                "name": REPORT_FILE_NAMES.get(report_type, report_type),
                "paths": paths if isinstance(paths, list) else [paths],
                "when": "always",
                "expire_in": spec.get("expire_in"),
                "artifact_type": report_type,
                "artifact_format": required_format(FileType[report_type]).name,
            }
        )
    return entries


def image(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    spec = {"name": value} if isinstance(value, str) else dict(value)
    return {
        "name": spec.get("name"),
        "entrypoint": spec.get("entrypoint"),
        "ports": spec.get("ports") or [],
        "pull_policy": spec.get("pull_policy"),
    }


async def dependencies(session: AsyncSession, job: Build) -> list[dict[str, Any]]:
    """Earlier-stage jobs of the pipeline that succeeded, or, for a job with ``needs:``, the
    jobs it needs with ``artifacts`` not false (any stage, as ``Ci::BuildDependencies``);
    then only those named in ``dependencies:``. Each with ``artifacts_file`` when its archive
    is still available. The token is the running job's
    (``ci_expose_running_job_token_for_artifacts``)."""
    named = (job.options or {}).get("dependencies")
    query: Any = (
        select(Build).where(Build.commit_id == job.commit_id, latest()).order_by(col(Build.stage_idx), col(Build.id))
    )
    if job.scheduling_type == SchedulingType.dag:
        needed = select(BuildNeed.name).where(BuildNeed.build_id == job.id, col(BuildNeed.artifacts).is_(True))
        query = query.where(col(Build.name).in_(needed))
    else:
        query = query.where(col(Build.stage_idx) < job.stage_idx, Build.status == BuildStatus.success)
    found = list((await session.exec(query)).all())
    if isinstance(named, list):
        found = [dep for dep in found if dep.name in named]
    if not found:
        return []
    archives: dict[int, JobArtifact] = {
        a.job_id: a
        for a in (
            await session.exec(
                select(JobArtifact).where(
                    col(JobArtifact.job_id).in_([d.id for d in found]), JobArtifact.file_type == FileType.archive
                )
            )
        ).all()
    }
    now = clock.now()
    result: list[dict[str, Any]] = []
    for dep in found:
        entry: dict[str, Any] = {"id": dep.id, "name": dep.name, "token": job.token}
        archive = archives.get(dep.id)  # type: ignore[arg-type]
        if archive is not None and dep.erased_at is None and (archive.expire_at is None or archive.expire_at > now):
            entry["artifacts_file"] = {"filename": archive.file, "size": archive.size}
        result.append(entry)
    return result


def git_depth(job: Build) -> int:
    """``BuildRunnerPresenter#git_depth``: the job's ``GIT_DEPTH`` (Ruby ``to_i``) or 20."""
    value = ((job.options or {}).get("variables") or {}).get("GIT_DEPTH")
    if value is None:
        return DEFAULT_GIT_DEPTH
    match = re.match(r"\s*[+-]?\d+", str(value))
    return int(match.group()) if match else 0


def refspecs(pipeline_id: int, ref: str, is_tag: bool, depth: int) -> list[str]:
    """``BuildRunnerPresenter#refspecs``: the pipeline's persistent ref, then the job's branch
    or tag; every branch and tag when the clone is not shallow."""
    specs = [f"+refs/pipelines/{pipeline_id}:refs/pipelines/{pipeline_id}"]
    if depth > 0:
        specs.append(f"+refs/tags/{ref}:refs/tags/{ref}" if is_tag else f"+refs/heads/{ref}:refs/remotes/origin/{ref}")
    else:
        specs += ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
    return specs


def commit_variables(commit: repositories.CommitInfo | None) -> dict[str, dict[str, Any]]:
    """What ``Builder::Pipeline#predefined_commit_variables`` reads from the commit itself
    (empty without a repository, as GitLab's are when the commit cannot be found)."""
    message = commit.message if commit else ""
    truncated = len(message.encode()) > MAX_COMMIT_MESSAGE_SIZE

    def cut(text: str) -> str:
        return text.encode()[:MAX_COMMIT_MESSAGE_SIZE].decode(errors="ignore") if truncated else text

    return {
        "CI_COMMIT_MESSAGE": _variable("CI_COMMIT_MESSAGE", cut(message)),
        "CI_COMMIT_MESSAGE_IS_TRUNCATED": _variable("CI_COMMIT_MESSAGE_IS_TRUNCATED", str(truncated).lower()),
        "CI_COMMIT_TITLE": _variable("CI_COMMIT_TITLE", cut(commit.title) if commit else ""),
        "CI_COMMIT_DESCRIPTION": _variable("CI_COMMIT_DESCRIPTION", cut(commit.description) if commit else ""),
        "CI_COMMIT_TIMESTAMP": _variable("CI_COMMIT_TIMESTAMP", _time(commit.committed_at) if commit else ""),
        "CI_COMMIT_AUTHOR": _variable(
            "CI_COMMIT_AUTHOR", f"{commit.author_name} <{commit.author_email}>" if commit else ""
        ),
    }


async def build_payload(
    session: AsyncSession, job: Build, runner: Runner, server: ServerURL, settings: Settings | None = None
) -> dict[str, Any]:
    """The job as the runner gets it; with ``settings`` the project's repository (if it has
    one) is looked up, and the runner is sent to fetch it instead of ``GIT_STRATEGY=none``."""
    project = await session.get(Project, job.project_id)
    pipeline = await session.get(Pipeline, job.commit_id)
    assert project is not None and pipeline is not None and job.token
    chain = await namespace_chain(session, project.namespace_id)
    namespace_path = "/".join(ns.path for ns in chain)
    full_path = f"{namespace_path}/{project.path}"
    user = await session.get(User, job.user_id) if job.user_id else None
    options = job.options or {}
    timeout = timeout_value(job, runner)
    project_url = f"{server.url}/{full_path}"
    repo_url = f"{server.scheme}://gitlab-ci-token:{job.token}@{server.host}/{full_path}.git"
    is_tag = bool(job.tag or pipeline.tag)
    depth = git_depth(job)
    assert project.id is not None and pipeline.id is not None
    default_branch = await repositories.default_branch(settings, project.id) if settings else None
    has_repository = default_branch is not None
    commit = await repositories.commit_info(settings, project.id, pipeline.sha) if settings and has_repository else None
    commit_vars = commit_variables(commit)
    queued = job.queued_at or job.created_at

    variables = [
        _variable("CI_PIPELINE_ID", pipeline.id),
        _variable("CI_PIPELINE_URL", f"{project_url}/-/pipelines/{pipeline.id}"),
        _variable("CI_JOB_ID", job.id),
        _variable("CI_JOB_URL", f"{project_url}/-/jobs/{job.id}"),
        _variable("CI_JOB_TOKEN", job.token, public=False, masked=True),
        _variable("CI_JOB_STARTED_AT", _time(job.started_at)),
        _variable("CI_REPOSITORY_URL", repo_url, public=False),
        _variable("CI", "true"),
        _variable("GITLAB_CI", "true"),
        _variable("CI_SERVER_URL", server.url),
        _variable("CI_SERVER_HOST", server.hostname),
        _variable("CI_SERVER_PORT", server.port),
        _variable("CI_SERVER_PROTOCOL", server.scheme),
        _variable("CI_SERVER_NAME", "GitLab"),
        _variable("CI_PROJECT_ID", project.id),
        _variable("CI_PROJECT_NAME", project.path),
        _variable("CI_PROJECT_TITLE", project.name),
        _variable("CI_PROJECT_PATH", full_path),
        _variable("CI_PROJECT_PATH_SLUG", slugify(full_path)),
        _variable("CI_PROJECT_NAMESPACE", namespace_path),
        _variable("CI_PROJECT_NAMESPACE_ID", project.namespace_id),
        _variable("CI_PROJECT_ROOT_NAMESPACE", chain[0].path if chain else ""),
        _variable("CI_PROJECT_URL", project_url),
        _variable("CI_PROJECT_VISIBILITY", VisibilityLevel(project.visibility_level).name.lower()),
        _variable("CI_DEFAULT_BRANCH", default_branch),
        _variable("CI_CONFIG_PATH", repositories.CONFIG_PATH),
        _variable("CI_PIPELINE_SOURCE", pipeline.source),
        _variable("CI_PIPELINE_CREATED_AT", _time(pipeline.created_at)),
        _variable("CI_COMMIT_SHA", pipeline.sha),
        _variable("CI_COMMIT_SHORT_SHA", pipeline.sha[:8]),
        _variable("CI_COMMIT_BEFORE_SHA", pipeline.before_sha),
        _variable("CI_COMMIT_REF_NAME", job.ref),
        _variable("CI_COMMIT_REF_SLUG", slugify(job.ref)),
        _variable("CI_COMMIT_TAG" if is_tag else "CI_COMMIT_BRANCH", job.ref),
        commit_vars["CI_COMMIT_MESSAGE"],
        commit_vars["CI_COMMIT_MESSAGE_IS_TRUNCATED"],
        commit_vars["CI_COMMIT_TITLE"],
        commit_vars["CI_COMMIT_DESCRIPTION"],
        _variable("CI_COMMIT_REF_PROTECTED", "false"),
        commit_vars["CI_COMMIT_TIMESTAMP"],
        commit_vars["CI_COMMIT_AUTHOR"],
        _variable("CI_JOB_NAME", job.name),
        _variable("CI_JOB_NAME_SLUG", slugify(job.name)),
        _variable("CI_JOB_STAGE", job.stage),
        _variable("CI_NODE_TOTAL", 1),
    ]
    if user is not None:
        variables += [
            _variable("GITLAB_USER_ID", user.id),
            _variable("GITLAB_USER_EMAIL", user.email),
            _variable("GITLAB_USER_LOGIN", user.username),
            _variable("GITLAB_USER_NAME", user.name),
        ]
    yaml_variables = options.get("variables") or {}
    variables += [_variable(str(k), v) for k, v in yaml_variables.items()]
    pipeline_variables = (
        await session.exec(select(PipelineVariable).where(PipelineVariable.pipeline_id == pipeline.id))
    ).all()
    job_variables = (await session.exec(select(JobVariable).where(JobVariable.job_id == job.id))).all()
    given = [*pipeline_variables, *job_variables]  # a played job's own variables come last and win
    variables += [_variable(v.key, v.value, public=False, file=v.variable_type == 2) for v in given]
    overridden = "GIT_STRATEGY" in yaml_variables or any(v.key == "GIT_STRATEGY" for v in given)
    if not has_repository and not overridden:
        variables.append(_variable("GIT_STRATEGY", "none"))  # nothing to fetch

    return {
        "id": job.id,
        "token": job.token,
        "allow_git_fetch": True,
        "job_info": {
            "id": job.id,
            "name": job.name,
            "stage": job.stage,
            "pipeline_id": pipeline.id,
            "project_id": project.id,
            "project_name": project.name,
            "project_full_path": full_path,
            "namespace_id": project.namespace_id,
            "root_namespace_id": chain[0].id if chain else project.namespace_id,
            "user_id": job.user_id,
            "time_in_queue_seconds": max(0, int(((job.started_at or clock.now()) - queued).total_seconds()))
            if queued
            else 0,
        },
        "git_info": {
            "repo_url": repo_url,
            "ref": job.ref,
            "sha": pipeline.sha,
            "before_sha": pipeline.before_sha,
            "ref_type": "tag" if is_tag else "branch",
            "refspecs": refspecs(pipeline.id, job.ref, is_tag, depth),
            "depth": depth,
            "repo_object_format": "sha1",
            "protected": False,
        },
        "runner_info": {"timeout": timeout, "runner_session_url": None},
        "variables": variables,
        "steps": steps(job, timeout),
        "image": image(options.get("image")),
        "services": [image(s) for s in options.get("services") or []],
        "artifacts": artifacts(job),
        "cache": list(options.get("cache") or []),
        "credentials": [],
        "features": {
            "trace_sections": True,
            "token_mask_prefixes": TOKEN_MASK_PREFIXES,
            "failure_reasons": FAILURE_REASONS,
        },
        "dependencies": await dependencies(session, job),
    }

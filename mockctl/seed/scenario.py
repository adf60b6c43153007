"""The scenario format ``POST /-/mock/seed`` and ``mockcoord seed FILE`` accept.

Names rather than ids link things together (``user: alice``, ``project: acme/app``)
so a scenario file reads like the instance it describes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.lib import feature, gitlab_version
from app.models import (
    PLAN_LIMIT_TYPES,
    AccessLevel,
    ArtifactLocked,
    BuildStatus,
    FileFormat,
    FileType,
    VisibilityLevel,
    required_format,
)
from app.services.git.repositories import valid_branch_name

Visibility = Literal["private", "internal", "public"]
AccessName = Literal["guest", "planner", "reporter", "developer", "maintainer", "owner"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettingsSpec(Strict):
    max_artifacts_size: int | None = Field(default=None, gt=0, description="MB")
    default_artifacts_expire_in: str | None = None
    keep_latest_artifact: bool | None = None
    runner_registration_token: str | None = Field(default=None, min_length=1, description="for POST /api/v4/runners")


class UserSpec(Strict):
    username: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str | None = None
    email: str | None = None
    admin: bool = False
    external: bool = False
    state: Literal["active", "blocked"] = "active"
    token: str | None = Field(default=None, min_length=8, description="personal access token; generated if absent")


class MemberSpec(Strict):
    user: str
    access_level: AccessName = "developer"

    @property
    def level(self) -> int:
        return AccessLevel[self.access_level.upper()]


class GroupSpec(Strict):
    path: str = Field(min_length=1, description="full path; a parent group must come first")
    name: str | None = None
    visibility: Visibility = "private"
    max_artifacts_size: int | None = Field(default=None, gt=0)
    members: list[MemberSpec] = Field(default_factory=list)


class ArtifactSpec(Strict):
    file_type: str = "archive"
    file_format: Literal["raw", "zip", "gzip"] | None = None
    filename: str | None = None
    content: str | None = None
    files: dict[str, str] | None = Field(default=None, description="path -> text, packed as a zip")
    size: int | None = Field(default=None, ge=0, le=1 << 30, description="bytes of filler when no content")
    expire_at: datetime | None = None
    expire_in: str | None = None
    locked: Literal["unlocked", "artifacts_locked", "unknown"] | None = None
    stored: bool = Field(default=True, description="false: a row whose object is missing")

    @field_validator("file_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in FileType.__members__:
            raise ValueError(f"unknown file_type {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ArtifactSpec:
        given = [n for n in ("content", "files", "size") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of content, files, size (got {', '.join(given)})")
        return self

    @property
    def type(self) -> FileType:
        return FileType[self.file_type]

    @property
    def format(self) -> FileFormat:
        return FileFormat[self.file_format] if self.file_format else required_format(self.type)

    @property
    def lock(self) -> int | None:
        return ArtifactLocked[self.locked] if self.locked else None


class CiArtifactsSpec(Strict):
    """``artifacts:`` as a ``.gitlab-ci.yml`` job writes it: what the runner is told to upload."""

    name: str | None = None
    paths: list[str] | None = None
    exclude: list[str] | None = None
    untracked: bool | None = None
    when: Literal["on_success", "on_failure", "always"] | None = None
    expire_in: str | None = None
    reports: dict[str, list[str]] | None = Field(default=None, description="report type -> paths, e.g. junit")

    @field_validator("reports")
    @classmethod
    def _known_reports(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for key in value or {}:
            if key not in FileType.__members__ or key in ("archive", "metadata", "trace"):
                raise ValueError(f"unknown report type {key!r}")
        return value


class JobSpec(Strict):
    name: str = Field(min_length=1)
    stage: str = "test"
    status: BuildStatus = BuildStatus.success
    user: str | None = None
    token: str | None = Field(default=None, min_length=8)
    token_expires_at: datetime | None = None
    erased: bool = False
    artifacts: list[ArtifactSpec] = Field(default_factory=list, description="artifacts already stored")
    # What the job runs, as .gitlab-ci.yml says it; stored in Build.options for the runner API.
    script: list[str] | None = None
    before_script: list[str] | None = None
    after_script: list[str] | None = None
    tags: list[str] | None = None
    ci_artifacts: CiArtifactsSpec | None = Field(default=None, description="artifacts: of the job's CI config")
    dependencies: list[str] | None = Field(default=None, description="names of earlier-stage jobs")
    variables: dict[str, str] | None = Field(default=None, description="the job's CI variables: (yaml variables)")

    def ci_options(self) -> dict[str, Any]:
        """``Build.options`` in GitLab's shape (``script``, ``tags``, ``artifacts``, ...)."""
        options: dict[str, Any] = {}
        for key in ("script", "before_script", "after_script", "tags", "dependencies", "variables"):
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        if self.ci_artifacts is not None:
            options["artifacts"] = self.ci_artifacts.model_dump(exclude_none=True)
        return options


class PipelineSpec(Strict):
    ref: str = "main"
    sha: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    status: BuildStatus = BuildStatus.success
    user: str | None = None
    locked: Literal["unlocked", "artifacts_locked"] | None = None
    jobs: list[JobSpec] = Field(default_factory=list)


class RepositorySpec(Strict):
    """A project's repository: one commit of a directory's files or of ``files``."""

    path: str | None = Field(default=None, description="a directory on the coordinator's disk, committed as it is")
    files: dict[str, str] | None = Field(default=None, description="path in the repository -> text")
    branch: str = "main"
    message: str = Field(default="Initial commit", min_length=1, description="the commit message")

    @field_validator("path")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"{value!r} is {'not a directory' if Path(value).exists() else 'missing'}")
        return value

    @field_validator("files")
    @classmethod
    def _file_paths(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in value or {}:
            parts = name.split("/")
            if any(p in ("", ".", "..", ".git") for p in parts):
                raise ValueError(f"{name!r} is not a relative file path")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in value:  # type: ignore[operator]
                    raise ValueError(f"{'/'.join(parts[:i])!r} is both a file and a directory")
        return value

    @field_validator("branch")
    @classmethod
    def _branch_name(cls, value: str) -> str:
        if not valid_branch_name(value):
            raise ValueError(f"{value!r} is not a valid branch name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RepositorySpec:
        if (self.path is None) == (self.files is None):
            raise ValueError("give exactly one of path, files")
        return self


class ProjectSpec(Strict):
    path: str = Field(pattern=r"^[^/]+(/[^/]+)+$", description="namespace/project")
    name: str | None = None
    visibility: Visibility = "private"
    public_builds: bool = True
    keep_latest_artifact: bool = True
    max_artifacts_size: int | None = Field(default=None, gt=0)
    job_token_scope_enabled: bool = True
    job_token_allowlist: list[str] = Field(default_factory=list, description="projects whose job tokens may enter")
    pending_delete: bool = False
    members: list[MemberSpec] = Field(default_factory=list)
    pipelines: list[PipelineSpec] = Field(default_factory=list)
    repository: RepositorySpec | None = Field(default=None, description="a bare repository with one commit")
    ci_config: str | dict[str, Any] | None = Field(default=None, description=".gitlab-ci.yml, as text or a mapping")


class RunnerSpec(Strict):
    token: str | None = None
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    run_untagged: bool = True
    active: bool = True


class Scenario(Strict):
    settings: SettingsSpec = Field(default_factory=SettingsSpec)
    plan_limits: dict[str, int] = Field(default_factory=dict, description="ci_max_artifact_size_<type>: MB")
    gitlab_version: str | None = Field(
        default=None, description="the GitLab release to imitate from now on ('15.2', 'newest'); every process follows"
    )
    feature_flags: dict[str, bool] = Field(default_factory=dict)
    users: list[UserSpec] = Field(default_factory=list)
    groups: list[GroupSpec] = Field(default_factory=list)
    projects: list[ProjectSpec] = Field(default_factory=list)
    runners: list[RunnerSpec] = Field(default_factory=list)

    @field_validator("gitlab_version")
    @classmethod
    def _release(cls, value: str | None) -> str | None:
        if value is not None:
            gitlab_version.parse(value)
        return value

    @field_validator("feature_flags")
    @classmethod
    def _known_flags(cls, value: dict[str, bool]) -> dict[str, bool]:
        for name in value:
            if name not in feature.DEFINITIONS:
                raise ValueError(f"unknown feature flag {name!r} (known: {', '.join(feature.DEFINITIONS)})")
        return value

    @field_validator("plan_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, int]) -> dict[str, int]:
        allowed = {f"ci_max_artifact_size_{t}" for t in PLAN_LIMIT_TYPES}
        for key, size in value.items():
            if key not in allowed:
                raise ValueError(f"unknown plan limit {key!r}")
            if size < 0:
                raise ValueError(f"{key} must be >= 0")
        return value


VISIBILITY = {
    "private": VisibilityLevel.PRIVATE,
    "internal": VisibilityLevel.INTERNAL,
    "public": VisibilityLevel.PUBLIC,
}


def validation_message(exc: ValidationError) -> str:
    """Pydantic's first complaint in one line, naming the field (``users.0.username: ...``)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"

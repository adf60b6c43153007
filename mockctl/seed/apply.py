"""Apply a scenario in one transaction: all of it, or nothing (objects included)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.auth.auth_finders import token_digest
from app.lib import gitlab_version, tokens
from app.lib.chronic_duration import DurationParseError, expire_at
from app.lib.ci_config import ConfigError
from app.models import (
    COMPLETED_STATUSES,
    ApplicationSetting,
    ArtifactLocked,
    Build,
    BuildStatus,
    FeatureGate,
    FileStore,
    JobArtifact,
    JobTokenProjectScopeLink,
    Member,
    Namespace,
    PersonalAccessToken,
    Pipeline,
    PlanLimits,
    Project,
    ProjectCiCdSetting,
    ProjectStatistics,
    Runner,
    User,
)
from app.services.ci.config_source import set_project_ci_config
from app.services.ci.create_pipeline_service import next_pipeline_iid
from app.services.ci.job_artifacts.max_artifact_size import application_settings
from app.services.git import repositories
from app.services.projects.statistics import increment_build_artifacts_size
from app.state import AppState
from app.storage import StorageError
from app.storage.paths import final_path
from app.uploaders.job_artifact_uploader import artifact_key
from mockctl import shared_state
from mockctl.seed.scenario import (
    VISIBILITY,
    ArtifactSpec,
    MemberSpec,
    PipelineSpec,
    ProjectSpec,
    RepositorySpec,
    Scenario,
)


class SeedError(Exception):
    """A scenario that cannot be applied; ``field`` names where (``projects.0.path``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class SeedResult:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    runners: list[dict[str, Any]] = field(default_factory=list)


class _Seeder:
    def __init__(self, state: AppState, session: AsyncSession) -> None:
        self.state = state
        self.session = session
        self.result = SeedResult()
        self.placed: list[str] = []
        self.users: dict[str, User] = {}
        self.namespaces: dict[str, Namespace] = {}
        self.projects: dict[str, Project] = {}
        self.repositories: list[int] = []  # project ids whose repository this seed wrote

    async def user(self, username: str, where: str) -> User:
        if username not in self.users:
            found = (await self.session.exec(select(User).where(User.username == username))).first()
            if found is None:
                raise SeedError(where, f"unknown user {username!r}")
            self.users[username] = found
        return self.users[username]

    async def namespace(self, path: str, where: str) -> Namespace:
        if path not in self.namespaces:
            found = await self._find_namespace(path)
            if found is None:
                raise SeedError(where, f"unknown group or user namespace {path!r}")
            self.namespaces[path] = found
        return self.namespaces[path]

    async def _find_namespace(self, full_path: str) -> Namespace | None:
        parent_id: int | None = None
        found: Namespace | None = None
        for part in full_path.split("/"):
            query = select(Namespace).where(Namespace.path == part, Namespace.parent_id == parent_id)
            found = (await self.session.exec(query)).first()
            if found is None:
                return None
            parent_id = found.id
        return found

    async def project(self, full_path: str, where: str) -> Project:
        if full_path not in self.projects:
            ns_path, _, path = full_path.rpartition("/")
            ns = await self.namespace(ns_path, where)
            found = (
                await self.session.exec(select(Project).where(Project.namespace_id == ns.id, Project.path == path))
            ).first()
            if found is None:
                raise SeedError(where, f"unknown project {full_path!r}")
            self.projects[full_path] = found
        return self.projects[full_path]

    async def apply(self, scenario: Scenario) -> SeedResult:
        await self.settings(scenario)
        for i, spec in enumerate(scenario.users):
            await self.add_user(spec, f"users.{i}")
        for i, group in enumerate(scenario.groups):
            await self.add_group(group, f"groups.{i}")
        for i, project in enumerate(scenario.projects):
            await self.add_project(project, f"projects.{i}")
        for i, project in enumerate(scenario.projects):
            await self.add_allowlist(project, f"projects.{i}")
            for j, pipeline in enumerate(project.pipelines):
                await self.add_pipeline(project, pipeline, f"projects.{i}.pipelines.{j}")
        for i, runner in enumerate(scenario.runners):
            await self.add_runner(runner, f"runners.{i}")
        return self.result

    async def settings(self, scenario: Scenario) -> None:
        app_settings = await application_settings(self.session)
        for key, value in scenario.settings.model_dump(exclude_none=True).items():
            setattr(app_settings, key, value)
        self.session.add(app_settings)
        if scenario.settings.default_artifacts_expire_in:
            self._check_duration(scenario.settings.default_artifacts_expire_in, "settings.default_artifacts_expire_in")
        if scenario.plan_limits:
            limits = (await self.session.exec(select(PlanLimits))).first() or PlanLimits()
            for key, value in scenario.plan_limits.items():
                setattr(limits, key, value)
            self.session.add(limits)
        for name, enabled in scenario.feature_flags.items():
            await self.session.exec(delete(FeatureGate).where(FeatureGate.feature_key == name))  # type: ignore[call-overload]
            self.session.add(FeatureGate(feature_key=name, value="true" if enabled else "false"))

    @staticmethod
    def _check_duration(value: str, where: str) -> None:
        try:
            expire_at(value, "never", clock.now())
        except DurationParseError as exc:
            raise SeedError(where, str(exc)) from exc

    async def add_user(self, spec: Any, where: str) -> None:
        if (await self.session.exec(select(User.id).where(User.username == spec.username))).first():
            raise SeedError(f"{where}.username", f"user {spec.username!r} already exists")
        user = User(
            username=spec.username,
            name=spec.name or spec.username,
            email=spec.email or f"{spec.username}@example.com",
            admin=spec.admin,
            external=spec.external,
            state=spec.state,
        )
        self.session.add(user)
        await self.session.flush()
        self.session.add(Namespace(name=spec.username, path=spec.username, type="User", owner_id=user.id))
        token = spec.token or tokens.personal_access_token()
        if (
            await self.session.exec(
                select(PersonalAccessToken.id).where(PersonalAccessToken.token_digest == token_digest(token))
            )
        ).first():
            raise SeedError(f"{where}.token", "token already in use")
        self.session.add(PersonalAccessToken(user_id=user.id, token_digest=token_digest(token)))  # type: ignore[arg-type]
        self.users[spec.username] = user
        self.result.users[spec.username] = {"id": user.id, "token": token}

    async def add_members(self, members: list[MemberSpec], source_type: str, source_id: int, where: str) -> None:
        for k, member in enumerate(members):
            user = await self.user(member.user, f"{where}.members.{k}.user")
            self.session.add(
                Member(
                    user_id=user.id,
                    source_id=source_id,
                    source_type=source_type,  # type: ignore[arg-type]
                    access_level=member.level,
                )
            )

    async def add_group(self, spec: Any, where: str) -> None:
        parent_path, _, path = spec.path.rpartition("/")
        parent = await self.namespace(parent_path, f"{where}.path") if parent_path else None
        if await self._find_namespace(spec.path) is not None:
            raise SeedError(f"{where}.path", f"namespace {spec.path!r} already exists")
        group = Namespace(
            name=spec.name or path,
            path=path,
            type="Group",
            parent_id=parent.id if parent else None,
            visibility_level=VISIBILITY[spec.visibility],
            max_artifacts_size=spec.max_artifacts_size,
        )
        self.session.add(group)
        await self.session.flush()
        self.namespaces[spec.path] = group
        await self.add_members(spec.members, "Namespace", group.id, where)  # type: ignore[arg-type]
        self.result.groups[spec.path] = {"id": group.id}

    async def add_project(self, spec: ProjectSpec, where: str) -> None:
        ns_path, _, path = spec.path.rpartition("/")
        namespace = await self.namespace(ns_path, f"{where}.path")
        if (
            await self.session.exec(
                select(Project.id).where(Project.namespace_id == namespace.id, Project.path == path)
            )
        ).first():
            raise SeedError(f"{where}.path", f"project {spec.path!r} already exists")
        project = Project(
            name=spec.name or path,
            path=path,
            namespace_id=namespace.id,  # type: ignore[arg-type]
            visibility_level=VISIBILITY[spec.visibility],
            public_builds=spec.public_builds,
            max_artifacts_size=spec.max_artifacts_size,
            pending_delete=spec.pending_delete,
        )
        self.session.add(project)
        await self.session.flush()
        assert project.id is not None
        self.session.add(
            ProjectCiCdSetting(
                project_id=project.id,
                keep_latest_artifact=spec.keep_latest_artifact,
                job_token_scope_enabled=spec.job_token_scope_enabled,
            )
        )
        self.session.add(ProjectStatistics(project_id=project.id, namespace_id=namespace.id))  # type: ignore[arg-type]
        await self.add_members(spec.members, "Project", project.id, where)
        if spec.ci_config is not None:
            try:
                await set_project_ci_config(self.session, project, spec.ci_config)
            except ConfigError as exc:
                raise SeedError(f"{where}.ci_config", exc.errors[0]) from None
        self.projects[spec.path] = project
        self.result.projects[spec.path] = {"id": project.id}
        if spec.repository is not None:
            await self.add_repository(spec.path, project.id, spec.repository, f"{where}.repository")
        else:
            await repositories.remove_repository(self.state.settings, project.id)  # one left by an earlier run

    async def add_repository(self, full_path: str, project_id: int, spec: RepositorySpec, where: str) -> None:
        files = (
            repositories.files_from_directory(Path(spec.path))
            if spec.path is not None
            else repositories.files_from_mapping(spec.files or {})
        )
        self.repositories.append(project_id)
        try:
            sha = await repositories.create_repository(
                self.state.settings, project_id, files, spec.branch, spec.message, clock.now()
            )
        except (repositories.RepositoryError, OSError) as exc:
            raise SeedError(f"{where}.path" if spec.path is not None else where, str(exc)) from exc
        self.result.projects[full_path]["repository"] = {"branch": spec.branch, "sha": sha}

    async def add_allowlist(self, spec: ProjectSpec, where: str) -> None:
        project = self.projects[spec.path]
        for k, other in enumerate(spec.job_token_allowlist):
            allowed = await self.project(other, f"{where}.job_token_allowlist.{k}")
            self.session.add(JobTokenProjectScopeLink(source_project_id=project.id, target_project_id=allowed.id))  # type: ignore[arg-type]

    async def add_pipeline(self, project_spec: ProjectSpec, spec: PipelineSpec, where: str) -> None:
        project = self.projects[project_spec.path]
        app_settings = await application_settings(self.session)
        keep_latest = app_settings.keep_latest_artifact and project_spec.keep_latest_artifact
        locked = (
            ArtifactLocked[spec.locked]
            if spec.locked
            else (ArtifactLocked.artifacts_locked if keep_latest else ArtifactLocked.unlocked)
        )
        user = await self.user(spec.user or "root", f"{where}.user")
        now = clock.now()
        sha, before_sha = spec.sha or os.urandom(20).hex(), repositories.ZERO_SHA
        if project_spec.repository is not None:
            sha, before_sha = await self.pipeline_commit(project.id, spec, where)  # type: ignore[arg-type]
        pipeline = Pipeline(
            project_id=project.id,
            iid=await next_pipeline_iid(self.session, project.id),  # type: ignore[arg-type]
            ref=spec.ref,
            sha=sha,
            before_sha=before_sha,
            status=spec.status,
            locked=locked,
            user_id=user.id,
            started_at=now,
            finished_at=now if spec.status in COMPLETED_STATUSES else None,
            updated_at=now,
        )
        self.session.add(pipeline)
        await self.session.flush()
        if project_spec.repository is not None:
            await repositories.ensure_persistent_ref(self.state.settings, project.id, pipeline.id, sha)  # type: ignore[arg-type]
        self.result.pipelines.append(
            {"id": pipeline.id, "project": project_spec.path, "ref": spec.ref, "status": spec.status, "sha": sha}
        )
        stages: dict[str, int] = {}
        for k, job_spec in enumerate(spec.jobs):
            stage_idx = stages.setdefault(job_spec.stage, len(stages))
            job_where = f"{where}.jobs.{k}"
            job_user = await self.user(job_spec.user, f"{job_where}.user") if job_spec.user else user
            token = job_spec.token or tokens.job_token()
            if (await self.session.exec(select(Build.id).where(Build.token == token))).first():
                raise SeedError(f"{job_where}.token", "token already in use")
            running_or_done = job_spec.status not in (BuildStatus.created, BuildStatus.pending)
            job = Build(
                project_id=project.id,
                commit_id=pipeline.id,
                name=job_spec.name,
                stage=job_spec.stage,  # type: ignore[arg-type]
                stage_idx=stage_idx,
                status=job_spec.status,
                token=token,
                token_expires_at=job_spec.token_expires_at,
                user_id=job_user.id,
                ref=spec.ref,
                started_at=now if running_or_done else None,
                finished_at=now if job_spec.status in COMPLETED_STATUSES else None,
                erased_at=now if job_spec.erased else None,
                options=job_spec.ci_options(),
                queued_at=now if job_spec.status == BuildStatus.pending else None,
            )
            self.session.add(job)
            await self.session.flush()
            for m, artifact_spec in enumerate(job_spec.artifacts):
                await self.add_artifact(job, pipeline.locked, artifact_spec, f"{job_where}.artifacts.{m}", app_settings)
            self.result.jobs.append(
                {
                    "id": job.id,
                    "name": job.name,
                    "stage": job.stage,
                    "project": project_spec.path,
                    "pipeline_id": pipeline.id,
                    "status": job.status,
                    "token": token,
                }
            )

    async def pipeline_commit(self, project_id: int, spec: PipelineSpec, where: str) -> tuple[str, str]:
        """The pipeline's ``sha`` (the ref's head unless given) and ``before_sha`` (its parent)."""
        sha = spec.sha or await repositories.head_sha(self.state.settings, project_id, spec.ref)
        if sha is None:
            raise SeedError(f"{where}.ref", f"no branch or tag {spec.ref!r} in the repository")
        commit = await repositories.commit_info(self.state.settings, project_id, sha)
        if commit is None:
            raise SeedError(f"{where}.sha", f"{sha} is no commit of the repository")
        return sha, commit.before_sha

    async def add_artifact(
        self, job: Build, pipeline_locked: int, spec: ArtifactSpec, where: str, app_settings: ApplicationSetting
    ) -> None:
        now = clock.now()
        if spec.expire_at is not None:
            expires = spec.expire_at if spec.expire_at.tzinfo else spec.expire_at.replace(tzinfo=UTC)
        elif spec.expire_in is not None:
            try:
                expires = expire_at(spec.expire_in, "never", now)
            except DurationParseError as exc:
                raise SeedError(f"{where}.expire_in", str(exc)) from exc
        else:
            expires = expire_at(None, app_settings.default_artifacts_expire_in, now)
        remote = self.state.store.remote
        filename = spec.filename or _default_filename(spec)
        source = await asyncio.to_thread(_materialize, spec, self.state.settings.uploads_path)
        try:
            size = source.stat().st_size
            artifact = JobArtifact(
                project_id=job.project_id,
                job_id=job.id,
                partition_id=job.partition_id,  # type: ignore[arg-type]
                file_type=spec.type,
                file_format=spec.format,
                size=size,
                file=filename,
                file_store=FileStore.REMOTE if remote else FileStore.LOCAL,
                file_final_path=final_path(job.project_id) if remote else None,
                expire_at=expires,
                locked=spec.lock if spec.lock is not None else pipeline_locked,
                created_at=now,
                updated_at=now,
            )
            self.session.add(artifact)
            await self.session.flush()
            if job.artifacts_expire_at is None or (expires and job.artifacts_expire_at < expires):
                job.artifacts_expire_at = expires
            await increment_build_artifacts_size(self.session, job.project_id, size)
            if spec.stored:
                key = artifact_key(artifact)
                try:
                    await self.state.store.put_file(key, source)
                except StorageError as exc:
                    raise SeedError(where, f"storing the object failed: {exc}") from exc
                self.placed.append(key)
        finally:
            source.unlink(missing_ok=True)
        self.result.artifacts.append(
            {
                "id": artifact.id,
                "job_id": job.id,
                "file_type": spec.file_type,
                "size": size,
                "key": artifact_key(artifact),
                "stored": spec.stored,
            }
        )

    async def add_runner(self, spec: Any, where: str) -> None:
        token = spec.token or tokens.runner_token()
        if (await self.session.exec(select(Runner.id).where(Runner.token == token))).first():
            raise SeedError(f"{where}.token", "token already in use")
        runner = Runner(
            token=token,
            description=spec.description,
            tag_list=spec.tags,
            run_untagged=spec.run_untagged,
            active=spec.active,
        )
        self.session.add(runner)
        await self.session.flush()
        self.result.runners.append({"id": runner.id, "token": token, "description": spec.description})


def _default_filename(spec: ArtifactSpec) -> str:
    if spec.type.name == "archive":
        return "artifacts.zip"
    if spec.type.name == "metadata":
        return "metadata.gz"
    if spec.type.name == "trace":
        return "job.log"
    return f"{spec.type.name}.{'gz' if spec.format.name == 'gzip' else spec.format.name}"


def _materialize(spec: ArtifactSpec, tmp_dir: Path) -> Path:
    """Write the artifact's bytes to a temp file (a zip for ``files``), streaming filler."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="seed-")
    path = Path(name)
    with os.fdopen(fd, "wb") as fh:
        if spec.files is not None:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as archive:
                for member, text in spec.files.items():
                    archive.writestr(member, text)
        elif spec.content is not None:
            fh.write(spec.content.encode())
        elif spec.size:
            chunk = b"\0" * (1 << 20)
            remaining = spec.size
            while remaining > 0:
                fh.write(chunk[: min(remaining, len(chunk))])
                remaining -= len(chunk)
    return path


async def apply_scenario(state: AppState, scenario: Scenario) -> SeedResult:
    previous = gitlab_version.render(gitlab_version.current())
    if scenario.gitlab_version is not None:  # first: the release decides how the rows are written
        await shared_state.change_version(state, scenario.gitlab_version)
    async with state.db.session() as session:
        seeder = _Seeder(state, session)
        try:
            result = await seeder.apply(scenario)
            await session.commit()
        except BaseException:
            await session.rollback()
            await state.store.delete_many(seeder.placed)
            for project_id in seeder.repositories:
                await repositories.remove_repository(state.settings, project_id)
            if scenario.gitlab_version is not None:
                await shared_state.change_version(
                    state, None if previous == state.settings.gitlab_version else previous
                )
            raise
    return result

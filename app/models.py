"""Tables and enums, named as GitLab names them (``db/structure.sql``, ``app/models/ci``).

Integer enum values are GitLab's: a row written here reads the same as a row in a
GitLab database. Times are aware UTC (see ``app.clock``).
"""

from __future__ import annotations

import types
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import DDL, JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, event, or_, text
from sqlmodel import Field, SQLModel, col

from app import clock


class AccessLevel(IntEnum):
    """``Gitlab::Access``."""

    NO_ACCESS = 0
    MINIMAL_ACCESS = 5
    GUEST = 10
    PLANNER = 15
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50


class VisibilityLevel(IntEnum):
    """``Gitlab::VisibilityLevel``."""

    PRIVATE = 0
    INTERNAL = 10
    PUBLIC = 20


class FileType(IntEnum):
    """``Ci::JobArtifact.file_types`` (there is no 10)."""

    archive = 1
    metadata = 2
    trace = 3
    junit = 4
    sast = 5
    dependency_scanning = 6
    container_scanning = 7
    dast = 8
    codequality = 9
    performance = 11
    metrics = 12
    metrics_referee = 13
    network_referee = 14
    lsif = 15
    dotenv = 16
    cobertura = 17
    terraform = 18
    accessibility = 19
    cluster_applications = 20
    secret_detection = 21
    requirements = 22
    coverage_fuzzing = 23
    browser_performance = 24
    load_performance = 25
    api_fuzzing = 26
    cluster_image_scanning = 27
    cyclonedx = 28
    requirements_v2 = 29
    annotations = 30
    repository_xray = 31
    jacoco = 32
    scip = 33
    sarif = 34
    license_scanning = 101


class FileFormat(IntEnum):
    raw = 1
    zip = 2
    gzip = 3


GZIP_TYPES = {
    FileType.junit,
    FileType.metrics,
    FileType.metrics_referee,
    FileType.network_referee,
    FileType.dotenv,
    FileType.cobertura,
    FileType.jacoco,
    FileType.cluster_applications,
    FileType.cyclonedx,
    FileType.annotations,
    FileType.repository_xray,
    FileType.metadata,
}
ZIP_TYPES = {FileType.archive, FileType.lsif, FileType.scip}
# ``Ci::JobArtifact::DOWNLOADABLE_TYPES`` (newest): what ``Ci::Build.with_downloadable_artifacts`` looks for
DOWNLOADABLE_TYPES = tuple(
    FileType[name]
    for name in (
        "accessibility",
        "api_fuzzing",
        "archive",
        "cobertura",
        "jacoco",
        "codequality",
        "container_scanning",
        "dast",
        "dependency_scanning",
        "dotenv",
        "junit",
        "license_scanning",
        "lsif",
        "metrics",
        "performance",
        "browser_performance",
        "load_performance",
        "sast",
        "secret_detection",
        "requirements",
        "requirements_v2",
        "cluster_image_scanning",
        "cyclonedx",
    )
)


def required_format(file_type: FileType) -> FileFormat:
    """``Ci::JobArtifact::TYPE_AND_FORMAT_PAIRS``: each type has exactly one valid format."""
    if file_type in ZIP_TYPES:
        return FileFormat.zip
    if file_type in GZIP_TYPES:
        return FileFormat.gzip
    return FileFormat.raw


class ArtifactLocked(IntEnum):
    """``Ci::JobArtifact.locked``; pipelines use only the first two."""

    unlocked = 0
    artifacts_locked = 1
    unknown = 2


class FileStore(IntEnum):
    """``ObjectStorage::Store``."""

    LOCAL = 1
    REMOTE = 2


class FileLocation(IntEnum):
    legacy_path = 1
    hashed_path = 2


class Accessibility(IntEnum):
    public = 0
    private = 1
    none = 2


class BuildStatus(StrEnum):
    """``Ci::HasStatus`` (strings in GitLab's database)."""

    created = "created"
    waiting_for_resource = "waiting_for_resource"
    preparing = "preparing"
    waiting_for_callback = "waiting_for_callback"
    pending = "pending"
    running = "running"
    success = "success"
    failed = "failed"
    canceling = "canceling"
    canceled = "canceled"
    skipped = "skipped"
    manual = "manual"
    scheduled = "scheduled"


COMPLETED_STATUSES = {BuildStatus.success, BuildStatus.failed, BuildStatus.canceled, BuildStatus.skipped}


class RunnerType(IntEnum):
    instance_type = 1
    group_type = 2
    project_type = 3


class RefreshState(IntEnum):
    """``Projects::BuildArtifactsSizeRefresh`` states."""

    created = 1
    running = 2
    pending = 3
    finalizing = 4


def _now() -> datetime:
    return clock.now()


INTEGER_RANGE = range(-(2**31), 2**31)  # an ``integer`` column (4 bytes on PostgreSQL)
ID_RANGE = INTEGER_RANGE  # the id columns are ``integer``
NO_ID = 0  # ids start at 1


def record_id(value: int) -> int:
    """``value`` as a key to look a record up by. An id beyond its column's type names no record
    (ActiveRecord's lookup finds none, for ``integer`` and ``bigint`` alike), so it becomes one no
    row has, not a database error (SQLite's ``OverflowError``, asyncpg's ``DataError``)."""
    return value if value in ID_RANGE else NO_ID


def row_offset(page: int, per_page: int) -> int:
    """The OFFSET of a page: past every row a table can hold, a page reads none (as a page past
    the last does), rather than overflowing the database's bigint."""
    return min((page - 1) * per_page, ID_RANGE.stop)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True)
    name: str = ""
    email: str = ""
    admin: bool = False
    external: bool = False
    state: str = "active"
    created_at: datetime = Field(default_factory=_now)


class PersonalAccessToken(SQLModel, table=True):
    __tablename__ = "personal_access_tokens"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = "mockcoord"
    token_digest: str = Field(index=True, unique=True)
    scopes: list[str] = Field(default_factory=lambda: ["api"], sa_column=Column(JSON))
    expires_at: datetime | None = None
    revoked: bool = False
    created_at: datetime = Field(default_factory=_now)


class Namespace(SQLModel, table=True):
    """Groups (``type='Group'``) and personal namespaces (``type='User'``)."""

    __tablename__ = "namespaces"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    path: str
    type: str = "Group"
    parent_id: int | None = Field(default=None, foreign_key="namespaces.id")
    owner_id: int | None = Field(default=None, foreign_key="users.id")
    visibility_level: int = VisibilityLevel.PRIVATE
    max_artifacts_size: int | None = None
    created_at: datetime = Field(default_factory=_now)


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    path: str
    namespace_id: int = Field(foreign_key="namespaces.id", index=True)
    visibility_level: int = VisibilityLevel.PRIVATE
    public_builds: bool = True
    max_artifacts_size: int | None = None
    pending_delete: bool = False
    archived: bool = False
    created_at: datetime = Field(default_factory=_now)


class ProjectCiCdSetting(SQLModel, table=True):
    __tablename__ = "project_ci_cd_settings"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", unique=True)
    keep_latest_artifact: bool = True
    job_token_scope_enabled: bool = True


class JobTokenProjectScopeLink(SQLModel, table=True):
    """``Ci::JobToken::ProjectScopeLink``: the inbound allowlist of a project."""

    __tablename__ = "ci_job_token_project_scope_links"
    id: int | None = Field(default=None, primary_key=True)
    source_project_id: int = Field(foreign_key="projects.id", index=True)
    target_project_id: int = Field(foreign_key="projects.id", index=True)
    direction: int = 1  # 0 outbound, 1 inbound
    created_at: datetime = Field(default_factory=_now)


class Member(SQLModel, table=True):
    """``members`` with ``source_type`` 'Project' or 'Namespace'."""

    __tablename__ = "members"
    __table_args__ = (Index("index_members_on_source", "source_type", "source_id"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    source_id: int
    source_type: str
    access_level: int = AccessLevel.DEVELOPER
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=_now)


class ApplicationSetting(SQLModel, table=True):
    __tablename__ = "application_settings"
    id: int | None = Field(default=None, primary_key=True)
    max_artifacts_size: int = 100
    default_artifacts_expire_in: str = "30 days"
    keep_latest_artifact: bool = True
    runner_registration_token: str | None = None
    created_at: datetime = Field(default_factory=_now)


PLAN_LIMIT_TYPES = [t.name for t in FileType if t not in (FileType.metadata, FileType.trace)]


def _plan_limits_namespace(ns: dict[str, Any]) -> None:
    ns["__tablename__"] = "plan_limits"
    ns["__doc__"] = "``plan_limits``: ``ci_max_artifact_size_<type>`` in MB, 0 = not set."
    annotations: dict[str, Any] = {"id": int | None, "plan_id": int}
    ns["id"] = Field(default=None, primary_key=True)
    ns["plan_id"] = Field(default=1, unique=True)
    for name in PLAN_LIMIT_TYPES:
        annotations[f"ci_max_artifact_size_{name}"] = int
        ns[f"ci_max_artifact_size_{name}"] = Field(default=0)
    ns["__annotations__"] = annotations


PlanLimits: type[SQLModel] = types.new_class("PlanLimits", (SQLModel,), {"table": True}, _plan_limits_namespace)


class Runner(SQLModel, table=True):
    __tablename__ = "ci_runners"
    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(index=True, unique=True)
    description: str = ""
    runner_type: int = RunnerType.instance_type
    active: bool = True
    run_untagged: bool = True
    locked: bool = False
    access_level: int = 0
    maximum_timeout: int | None = None
    tag_list: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    project_id: int | None = Field(default=None, foreign_key="projects.id")
    contacted_at: datetime | None = None
    token_expires_at: datetime | None = None
    # ``ci_runner_machines.runtime_features``: what ``info.features`` said at the last job request
    # (``cancel_gracefully`` decides whether canceling a running job waits for the runner).
    runtime_features: dict[str, bool] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=_now)


class Pipeline(SQLModel, table=True):
    __tablename__ = "p_ci_pipelines"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    ref: str = "main"
    sha: str = "0" * 40
    before_sha: str = "0" * 40
    tag: bool = False
    source: str = "push"
    status: str = BuildStatus.created
    locked: int = ArtifactLocked.artifacts_locked
    user_id: int | None = Field(default=None, foreign_key="users.id")
    partition_id: int = 100
    created_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    iid: int | None = None  # per-project number (``InternalId``), shown as ``#<iid>`` in GitLab's UI
    updated_at: datetime = Field(default_factory=_now)
    duration: int | None = None


class Build(SQLModel, table=True):
    """``Ci::Build`` (a job). ``commit_id`` is the pipeline id, as in GitLab's schema."""

    __tablename__ = "p_ci_builds"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    commit_id: int = Field(foreign_key="p_ci_pipelines.id", index=True)
    name: str = "job"
    stage: str = "test"
    stage_idx: int = 0
    status: str = BuildStatus.created
    token: str | None = Field(default=None, index=True, unique=True)
    token_expires_at: datetime | None = None
    user_id: int | None = Field(default=None, foreign_key="users.id")
    runner_id: int | None = Field(default=None, foreign_key="ci_runners.id")
    ref: str = "main"
    tag: bool = False
    when: str = "on_success"
    allow_failure: bool = False
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    partition_id: int = 100
    artifacts_expire_at: datetime | None = None
    created_at: datetime = Field(default_factory=_now)
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    erased_at: datetime | None = None
    erased_by_id: int | None = None
    failure_reason: str | None = None
    exit_code: int | None = None  # GitLab keeps it in ci_builds_metadata
    retried: bool | None = None  # replaced by a retry: history, no longer part of the pipeline's status
    scheduling_type: int | None = None  # SchedulingType; None for seeded jobs (stage order)


def latest() -> Any:
    """``CommitStatus.latest``: jobs not replaced by a retry."""
    return or_(col(Build.retried).is_(None), col(Build.retried).is_(False))


class BuildTraceChunk(SQLModel, table=True):
    """``Ci::BuildTraceChunk``: the live trace of a running job. GitLab cuts it into 128 KiB
    chunks kept in Redis or the database; here one chunk (``chunk_index`` 0) holds it all,
    in the database (``data_store`` 2), until the job finishes and it becomes a ``trace``
    artifact."""

    __tablename__ = "ci_build_trace_chunks"
    __table_args__ = (UniqueConstraint("build_id", "chunk_index"),)
    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(foreign_key="p_ci_builds.id", index=True)
    partition_id: int = 100
    chunk_index: int = 0
    data_store: int = 2
    raw_data: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False, default=b""))
    checksum: str | None = None
    lock_version: int = 0


class JobArtifact(SQLModel, table=True):
    """``Ci::JobArtifact``: one row per stored file of a job."""

    __tablename__ = "p_ci_job_artifacts"
    __table_args__ = (
        UniqueConstraint("job_id", "file_type", name="index_ci_job_artifacts_on_job_id_and_file_type"),
        Index("index_ci_job_artifacts_on_expire_at_and_job_id", "expire_at", "job_id"),
        # the housekeeping workers' ``locked = N AND expire_at < t`` (GitLab: partial indexes by lock)
        Index("index_ci_job_artifacts_on_locked_and_expire_at", "locked", "expire_at"),
        # ``DestroyAllExpiredService``'s batch query (GitLab's index since 15.x, by this name)
        Index(
            "index_ci_job_artifacts_expire_at_unlocked_non_trace",
            "expire_at",
            postgresql_where=text("locked = 0 AND file_type <> 3 AND expire_at IS NOT NULL"),
            sqlite_where=text("locked = 0 AND file_type <> 3 AND expire_at IS NOT NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    job_id: int = Field(foreign_key="p_ci_builds.id", index=True)
    partition_id: int = 100
    file_type: int
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    expire_at: datetime | None = None
    file: str | None = None
    file_store: int = FileStore.LOCAL
    file_sha256: str | None = None
    file_format: int | None = None
    file_location: int | None = FileLocation.hashed_path
    locked: int = ArtifactLocked.unknown
    accessibility: int = Accessibility.public
    file_final_path: str | None = Field(default=None, max_length=1024, index=True)
    exposed_as: str | None = None
    exposed_paths: list[str] | None = Field(default=None, sa_column=Column(JSON))


# GitLab's ``p_ci_job_artifacts`` is partitioned and keeps the old ``ci_job_artifacts`` table as
# a partition, so SQL written for the old name (the administrator page's query among it) still
# runs. Here the name is a view over the table: created with it, dropped before it.
CI_JOB_ARTIFACTS_VIEW = "ci_job_artifacts"
CREATE_CI_JOB_ARTIFACTS_VIEW = {
    "sqlite": f"CREATE VIEW IF NOT EXISTS {CI_JOB_ARTIFACTS_VIEW} AS SELECT * FROM p_ci_job_artifacts",
    "postgresql": f"CREATE OR REPLACE VIEW {CI_JOB_ARTIFACTS_VIEW} AS SELECT * FROM p_ci_job_artifacts",
}
DROP_CI_JOB_ARTIFACTS_VIEW = f"DROP VIEW IF EXISTS {CI_JOB_ARTIFACTS_VIEW}"
for _dialect, _statement in CREATE_CI_JOB_ARTIFACTS_VIEW.items():
    event.listen(JobArtifact.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
event.listen(JobArtifact.__table__, "before_drop", DDL(DROP_CI_JOB_ARTIFACTS_VIEW))


class DeletedObject(SQLModel, table=True):
    """``Ci::DeletedObject``: a stored file waiting for ``Ci::DeleteObjectsService``."""

    __tablename__ = "ci_deleted_objects"
    id: int | None = Field(default=None, primary_key=True)
    file_store: int = FileStore.LOCAL
    pick_up_at: datetime = Field(default_factory=_now, index=True)
    store_dir: str = Field(max_length=1024)
    file: str
    project_id: int | None = None


class ProjectStatistics(SQLModel, table=True):
    __tablename__ = "project_statistics"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", unique=True)
    namespace_id: int = Field(foreign_key="namespaces.id")
    build_artifacts_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    storage_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class BuildArtifactsSizeRefresh(SQLModel, table=True):
    """``Projects::BuildArtifactsSizeRefresh``: while one runs, artifact DELETEs answer 409."""

    __tablename__ = "project_build_artifacts_size_refreshes"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", unique=True)
    state: int = RefreshState.created
    refresh_started_at: datetime | None = None
    last_job_artifact_id: int | None = None
    last_job_artifact_id_on_refresh_start: int | None = None
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class CounterRefreshIncrement(SQLModel, table=True):
    """What GitLab keeps in Redis while a counter is refreshed (``Gitlab::Counters::BufferedCounter``):
    the refresh sum ``<key>:refresh`` and the bitmaps ``<key>:refresh:+:<n>`` / ``:-:<n>`` that say
    whose increments and decrements were counted. One row an artifact (``ref``) and sign, holding
    the amount it added to the sum (0 when deduplicated away); the sum is their total."""

    __tablename__ = "mockcoord_counter_refresh_increments"
    __table_args__ = (UniqueConstraint("project_id", "ref", "sign", name="index_counter_refresh_increments_unique"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(index=True)
    ref: int | None = Field(default=None, sa_column=Column(BigInteger))  # the artifact id; None: not deduplicated
    sign: int  # +1 an increment, -1 a decrement
    amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class ScheduledJob(SQLModel, table=True):
    """Sidekiq's ``schedule`` sorted set (``perform_in``): a job to run once ``run_at`` has passed
    on the mock clock. GitLab keeps it in Redis; here it is a table, so any process may run it."""

    __tablename__ = "mockcoord_scheduled_jobs"
    id: int | None = Field(default=None, primary_key=True)
    job_class: str
    args: list[Any] = Field(default_factory=list, sa_column=Column(JSON))
    run_at: datetime = Field(index=True)
    created_at: datetime = Field(default_factory=_now)


class PendingDirectUpload(SQLModel, table=True):
    """GitLab keeps these in the Redis hash ``pending_direct_uploads``; here it is a table
    so several Rails processes sharing one database agree on it."""

    __tablename__ = "mockcoord_pending_direct_uploads"
    id: int | None = Field(default=None, primary_key=True)
    location_identifier: str = "artifacts"
    path: str = Field(max_length=1024, unique=True)
    created_at: datetime = Field(default_factory=_now)


class FeatureGate(SQLModel, table=True):
    """Flipper's ``feature_gates`` (GitLab feature flags)."""

    __tablename__ = "feature_gates"
    __table_args__ = (UniqueConstraint("feature_key", "key", "value"),)
    id: int | None = Field(default=None, primary_key=True)
    feature_key: str = Field(index=True)
    key: str = "boolean"
    value: str = "true"


class ExclusiveLeaseRow(SQLModel, table=True):
    """``Gitlab::ExclusiveLease`` when no Redis is configured: GitLab's Redis key
    ``gitlab:exclusive_lease:<key>`` (a UUID with a TTL) as a row, expiring on the real clock."""

    __tablename__ = "exclusive_leases"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=255)
    uuid: str
    expires_at: datetime


class SharedStateKey(SQLModel, table=True):
    """A key of GitLab's shared-state Redis (``Gitlab::Redis::SharedState``: a rake task's resume
    marker, with its TTL) when no Redis is configured; expires on the real clock, as a TTL does."""

    __tablename__ = "mockcoord_shared_state"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=255)
    value: str = Field(max_length=2048)
    expires_at: datetime | None = None


class BuildNeed(SQLModel, table=True):
    """``Ci::BuildNeed``: a job named in another job's ``needs:``."""

    __tablename__ = "ci_build_needs"
    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(foreign_key="p_ci_builds.id", index=True)
    partition_id: int = 100
    name: str
    artifacts: bool = True
    optional: bool = False


class PipelineVariable(SQLModel, table=True):
    """``Ci::PipelineVariable``: ``variables`` given when the pipeline was created."""

    __tablename__ = "p_ci_pipeline_variables"
    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = Field(foreign_key="p_ci_pipelines.id", index=True)
    partition_id: int = 100
    key: str
    value: str = ""
    variable_type: int = 1  # env_var 1, file 2


class JobVariable(SQLModel, table=True):
    """``Ci::JobVariable``: variables given when a manual job is played (kept by a retry)."""

    __tablename__ = "ci_job_variables"
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="p_ci_builds.id", index=True)
    partition_id: int = 100
    key: str
    value: str = ""
    variable_type: int = 1  # env_var 1, file 2


class ProjectCiConfig(SQLModel, table=True):
    """The project's ``.gitlab-ci.yml`` until projects have repositories: GitLab reads it
    from the repository at the pipeline's sha (see ``app.services.ci.config_source``)."""

    __tablename__ = "mockcoord_project_ci_configs"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", unique=True)
    content: str
    updated_at: datetime = Field(default_factory=_now)


class SchedulingType(IntEnum):
    """``Ci::Processable.scheduling_types``: wait for earlier stages, or only for ``needs``."""

    stage = 0
    dag = 1

"""Settings, read from ``MOCKCOORD_*`` environment variables and CLI flags.

The object-storage block mirrors GitLab's consolidated form (``object_store.connection``
plus one bucket per object type) so a GitLab administrator recognises every key.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ADMIN_TOKEN = "glpat-mockcoord-admin-token"


class ObjectStoreConnection(BaseModel):
    """GitLab's ``object_store.connection`` (fog-style keys)."""

    provider: Literal["AWS"] = "AWS"
    region: str | None = "us-east-1"
    endpoint: str | None = None
    path_style: bool = True
    aws_access_key_id: str = "mockcoord"
    aws_secret_access_key: str = "mockcoord-secret"


class ObjectBucket(BaseModel):
    """One ``object_store.objects.<type>`` entry; ``bucket`` may carry a ``bucket/prefix``."""

    bucket: str = "artifacts"


class ObjectStoreObjects(BaseModel):
    artifacts: ObjectBucket = Field(default_factory=ObjectBucket)


class ObjectStore(BaseModel):
    """GitLab's consolidated object storage settings."""

    enabled: bool = True
    proxy_download: bool = False
    bucket_prefixes: bool = Field(
        default=True,
        description="false: emulate GitLab before 15.3 (gitlab!91307), whose Rails did not understand "
        "a path in the bucket name, so direct uploads end in 500 Missing file",
    )
    connection: ObjectStoreConnection = Field(default_factory=ObjectStoreConnection)
    objects: ObjectStoreObjects = Field(default_factory=ObjectStoreObjects)

    @property
    def artifacts_bucket(self) -> str:
        return self.objects.artifacts.bucket.split("/", 1)[0]

    @property
    def rails_bucket_prefix(self) -> str:
        """Where Rails looks for objects: under the prefix, unless emulating GitLab < 15.3."""
        return self.artifacts_bucket_prefix if self.bucket_prefixes else ""

    @property
    def artifacts_bucket_prefix(self) -> str:
        """``bucket/prefix`` in the bucket name means keys live under ``prefix/``."""
        parts = self.objects.artifacts.bucket.split("/", 1)
        return parts[1].strip("/") + "/" if len(parts) == 2 and parts[1].strip("/") else ""


class Housekeeping(BaseModel):
    """GitLab's housekeeping limits, constants in its services; settings here so a rehearsal can
    lift them and see what a backlog would do without them."""

    expire_batch_size: int = Field(default=100, ge=1, description="DestroyAllExpiredService::BATCH_SIZE")
    expire_loop_limit: int | None = Field(
        default=None, ge=1, description="DestroyAllExpiredService::LOOP_LIMIT; default 500 (100 on 15.x)"
    )
    unknown_batch_size: int = Field(default=100, ge=1, description="UpdateUnknownLockedStatusService::BATCH_SIZE")
    unknown_loop_limit: int = Field(default=100, ge=1, description="UpdateUnknownLockedStatusService::LOOP_LIMIT")
    loop_timeout_seconds: float = Field(default=300, gt=0, description="both services' LOOP_TIMEOUT (5 minutes)")
    lease_timeout_seconds: int = Field(default=360, ge=1, description="both services' exclusive lease (6 minutes)")
    delete_objects_batch_size: int = Field(default=100, ge=1, description="Ci::DeleteObjectsService::BATCH_SIZE")
    delete_objects_max_running_jobs: int = Field(
        default=20, ge=1, description="Ci::DeleteObjectsWorker's LimitedCapacity max_running_jobs"
    )
    delete_objects_retry_in_seconds: int = Field(default=600, ge=0, description="Ci::DeleteObjectsService::RETRY_IN")
    refresh_batch_size: int = Field(
        default=500, ge=1, description="Projects::RefreshBuildArtifactsSizeStatisticsService::BATCH_SIZE"
    )
    refresh_interval_seconds: float = Field(
        default=0.1, ge=0, description="RefreshBuildArtifactsSizeStatisticsService::REFRESH_INTERVAL_SECONDS"
    )
    refresh_enqueue_batch_size: int = Field(
        default=500, ge=1, description="the refresh rake task's BUILD_ARTIFACTS_SIZE_REFRESH_ENQUEUE_BATCH_SIZE"
    )
    refresh_enqueue_sleep_seconds: float = Field(
        default=1.0, ge=0, description="the refresh rake task's Kernel.sleep(1) after each batch"
    )


class CronJob(BaseModel):
    """One ``cron_jobs.<name>`` entry of ``gitlab.yml`` (GitLab's ``Settings.cron_jobs``)."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, description="the cron line; unset: GitLab's")
    enabled: bool = Field(default=True, description="false: the schedule never runs this job (sidekiq-cron's disabled)")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"not a cron line: {value!r}")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOCKCOORD_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path(".mockcoord")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default: SQLite file in the data directory"
    )
    host: str = "127.0.0.1"
    workhorse_port: int = 3000
    rails_port: int = 3001
    s3_port: int = 3002
    rails_processes: int = Field(
        default=1, ge=1, description="Rails processes on the one Rails port (Puma's workers); over 1 needs PostgreSQL"
    )
    workhorse_processes: int = Field(default=1, ge=1, description="Workhorse processes on the one front-door port")
    admin_token: str = DEFAULT_ADMIN_TOKEN
    workhorse_secret_file: Path | None = None
    object_store: ObjectStore = Field(default_factory=ObjectStore)
    client_max_body_size: int = Field(
        default=0, ge=0, description="NGINX's client_max_body_size in front of Workhorse, bytes; 0 = off"
    )
    check_object_exists: bool = Field(
        default=True,
        description="HEAD the object before answering a download, as GitLab's file.exists? does",
    )
    journal_limit: int = Field(default=10_000, ge=0, description="request journal entries kept in memory; 0 = off")
    log_level: str = "warning"
    gitlab_version: str = Field(
        default="newest",
        pattern=r"^(newest|\d+\.\d+)$",
        description="the GitLab release whose housekeeping to imitate (feature-flag defaults, its bugs): "
        "'15.2', '16.1', ... or 'newest'",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db: exclusive leases and resume markers live there, as in GitLab"
    )
    housekeeping: Housekeeping = Field(default_factory=Housekeeping)
    cron: bool = Field(
        default=True,
        description="run the cron schedule (sidekiq-cron) in mockcoord serve; mockcoord worker always runs it",
    )
    cron_jobs: dict[str, CronJob] = Field(
        default_factory=dict,
        description="per cron job: {'cron': '*/1 * * * *'} or {'enabled': false}; keys are GitLab's cron job names",
    )
    cron_poll_interval: float = Field(default=1.0, gt=0, le=60, description="seconds between two looks at the schedule")
    cron_shutdown_timeout: float = Field(
        default=25.0, ge=0, description="seconds a stopping process lets running jobs finish (Sidekiq's -t)"
    )
    monitoring_ip_whitelist: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="GitLab's monitoring.ip_whitelist: who may read /-/metrics",
    )

    @field_validator("monitoring_ip_whitelist")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the entry
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'mockcoord.sqlite3').resolve()}"

    @property
    def artifacts_path(self) -> Path:
        """GitLab's ``artifacts.storage_path`` (``shared/artifacts``)."""
        return (self.data_dir / "shared" / "artifacts").resolve()

    @property
    def uploads_path(self) -> Path:
        """Where Workhorse writes local uploads (``TempPath``)."""
        return self.artifacts_path / "tmp" / "uploads"

    @property
    def repositories_path(self) -> Path:
        """GitLab's ``git_data_dirs`` ``default`` storage: the projects' bare repositories."""
        return (self.data_dir / "repositories").resolve()

    @property
    def secret_file(self) -> Path:
        return (self.workhorse_secret_file or self.data_dir / ".gitlab_workhorse_secret").resolve()

    @property
    def embedded_s3(self) -> bool:
        return self.object_store.enabled and not self.object_store.connection.endpoint

    def binds_only_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

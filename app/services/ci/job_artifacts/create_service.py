"""``Ci::JobArtifacts::CreateService``: authorize an upload, then record what Workhorse stored."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.auth.runner_helpers import AuthenticatedJob
from app.errors import APIError, bad_request
from app.lib import feature
from app.lib.chronic_duration import DurationParseError, expire_at
from app.models import (
    Accessibility,
    ArtifactLocked,
    FileFormat,
    FileStore,
    FileType,
    JobArtifact,
    PendingDirectUpload,
    Pipeline,
    required_format,
)
from app.services.ci.job_artifacts.max_artifact_size import application_settings, max_artifact_size
from app.services.projects.statistics import Increment, bulk_increment_build_artifacts_size
from app.state import AppState
from app.storage import StorageError
from app.storage.paths import final_path
from app.uploaders.job_artifact_uploader import artifact_key

DIRECT_UPLOAD_TIMEOUT = 14400
DIRECT_UPLOAD_URL_EXPIRATION = 4 * 3600 + 15 * 60
TOO_LARGE = "file size has reached maximum size limit"


def too_large() -> APIError:
    return APIError(413, TOO_LARGE)


@dataclass(frozen=True)
class UploadedFile:
    """A file part Workhorse saved, as its signed ``<field>.gitlab-workhorse-upload`` says."""

    name: str
    path: str
    remote_id: str
    size: int
    sha256: str

    @classmethod
    def from_claims(cls, upload: dict[str, Any]) -> UploadedFile:
        try:
            return cls(
                name=str(upload.get("name") or ""),
                path=str(upload.get("path") or ""),
                remote_id=str(upload.get("remote_id") or ""),
                size=int(upload["size"]),
                sha256=str(upload.get("sha256") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_request(f"invalid upload description: {exc}") from exc


@dataclass(frozen=True)
class UploadParams:
    artifact_type: FileType
    artifact_format: FileFormat
    expire_in: str | None
    accessibility: Accessibility
    filesize: int | None = None


async def authorize(
    state: AppState, session: AsyncSession, ctx: AuthenticatedJob, params: UploadParams
) -> dict[str, Any]:
    """The ``application/vnd.gitlab-workhorse+json`` answer: where Workhorse puts the bytes."""
    maximum = await max_artifact_size(session, ctx.project, params.artifact_type)
    if params.filesize is not None and maximum and params.filesize > maximum:
        raise too_large()
    if not state.store.remote:
        return {"TempPath": str(state.settings.uploads_path), "MaximumSize": maximum}
    key = final_path(ctx.project.id)  # type: ignore[arg-type]
    session.add(PendingDirectUpload(path=key))
    await session.commit()
    store = state.store
    cfg = state.settings.object_store
    conn = cfg.connection
    remote = {
        "Timeout": DIRECT_UPLOAD_TIMEOUT,
        "GetURL": await store.presigned_url("GET", key, DIRECT_UPLOAD_URL_EXPIRATION),
        "StoreURL": await store.presigned_url("PUT", key, DIRECT_UPLOAD_URL_EXPIRATION),
        "DeleteURL": await store.presigned_url("DELETE", key, DIRECT_UPLOAD_URL_EXPIRATION),
        "SkipDelete": True,
        "MultipartUpload": None,
        "CustomPutHeaders": True,
        "PutHeaders": {},
        "ID": key,
        "UseWorkhorseClient": True,
        "RemoteTempObjectID": cfg.artifacts_bucket_prefix + key,
        "ObjectStorage": {
            "Provider": conn.provider,
            "S3Config": {
                "Bucket": cfg.artifacts_bucket,
                "Region": conn.region or "",
                "Endpoint": conn.endpoint or "",
                "PathStyle": conn.path_style,
                "UseIamProfile": False,
                "ServerSideEncryption": "",
                "SSEKMSKeyID": "",
                "AwsSDK": "v2",
            },
        },
    }
    return {"RemoteObject": remote, "MaximumSize": maximum}


def _allowed_local_path(state: AppState, path: str) -> Path:
    """Rails only accepts files Workhorse wrote under its upload directories."""
    real = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(state.settings.uploads_path)), Path(os.path.realpath(tempfile.gettempdir()))]
    if not any(real.is_relative_to(root) for root in roots) or not real.is_file():
        raise bad_request(f"insecure or missing upload path {path!r}")
    return real


async def create(
    state: AppState,
    session: AsyncSession,
    ctx: AuthenticatedJob,
    params: UploadParams,
    file: UploadedFile,
    metadata: UploadedFile | None,
) -> bool:
    """Record the artifact (and its metadata) in one transaction. Returns False when an
    identical artifact was already there (GitLab answers 201 and stores nothing)."""
    job, project = ctx.job, ctx.project
    maximum = await max_artifact_size(session, project, params.artifact_type)
    if maximum and file.size > maximum:
        raise too_large()
    existing = (
        await session.exec(
            select(JobArtifact).where(JobArtifact.job_id == job.id, JobArtifact.file_type == params.artifact_type)
        )
    ).first()
    if existing is not None and file.sha256 and existing.file_sha256 == file.sha256:
        return False
    now = clock.now()
    expire_in = params.expire_in or (await application_settings(session)).default_artifacts_expire_in
    try:
        expires = expire_at(expire_in, "never", now)
    except DurationParseError as exc:
        raise bad_request(f"expire_in {expire_in!r} is not a valid duration: {exc}") from exc
    if params.artifact_format != required_format(params.artifact_type):
        raise bad_request("Validation failed: Invalid file format with specified file type")
    if existing is not None:
        raise bad_request("another artifact of the same type already exists")

    pipeline = await session.get(Pipeline, job.commit_id)
    # ``ci_update_unlocked_job_artifacts`` off (before 15.3 by default): written ``unknown``
    locked = ArtifactLocked.unknown
    if await feature.enabled(session, "ci_update_unlocked_job_artifacts"):
        locked = pipeline.locked if pipeline else ArtifactLocked.unlocked
    common = dict(
        project_id=project.id,
        job_id=job.id,
        partition_id=job.partition_id,
        expire_at=expires,
        locked=locked,
        accessibility=params.accessibility,
        created_at=now,
        updated_at=now,
    )
    remote = state.store.remote
    if remote and not file.remote_id:
        raise bad_request("file was not uploaded to object storage")
    if not remote and not file.path:
        raise bad_request("file.path is missing")
    local_source = None if remote else _allowed_local_path(state, file.path)
    metadata_source = _allowed_local_path(state, metadata.path) if metadata else None

    artifact = JobArtifact(
        file_type=params.artifact_type,
        file_format=params.artifact_format,
        size=file.size,
        file_sha256=file.sha256 or None,
        file=Path(file.name or "artifacts.zip").name,
        file_store=FileStore.REMOTE if remote else FileStore.LOCAL,
        file_final_path=file.remote_id or None,
        **common,
    )
    artifacts = [artifact]
    if metadata is not None:
        artifacts.append(
            JobArtifact(
                file_type=FileType.metadata,
                file_format=FileFormat.gzip,
                size=metadata.size,
                file_sha256=metadata.sha256 or None,
                file="metadata.gz",
                file_store=FileStore.REMOTE if remote else FileStore.LOCAL,
                **common,
            )
        )
    placed: list[str] = []
    try:
        if remote:
            pending = (
                await session.exec(select(PendingDirectUpload).where(PendingDirectUpload.path == file.remote_id))
            ).first()
            if pending is None:
                raise bad_request(f"remote object {file.remote_id!r} was not authorized by this coordinator")
            if await state.store.head(file.remote_id) is None:
                # ObjectStorage::Concern#cache_remote_file! (check_remote_file_existence_on_upload?)
                raise APIError(500, "Missing file")
            await session.delete(pending)
        session.add_all(artifacts)
        await session.flush()
        job.artifacts_expire_at = expires
        session.add(job)
        increments = [Increment(a.size or 0, a.id) for a in artifacts]
        await bulk_increment_build_artifacts_size(session, project.id, increments)  # type: ignore[arg-type]
        if local_source is not None:
            await state.store.put_file(artifact_key(artifact), local_source)
            placed.append(artifact_key(artifact))
        if metadata_source is not None:
            await state.store.put_file(artifact_key(artifacts[1]), metadata_source)
            placed.append(artifact_key(artifacts[1]))
        await session.commit()
    except StorageError as exc:
        await _undo(state, session, placed)
        raise APIError(503, str(exc)) from exc
    except BaseException:
        await _undo(state, session, placed)
        raise
    return True


async def _undo(state: AppState, session: AsyncSession, placed: list[str]) -> None:
    await session.rollback()
    await state.store.delete_many(placed)

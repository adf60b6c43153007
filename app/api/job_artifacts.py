"""The project artifacts API (``lib/api/ci/job_artifacts.rb``): archive and single-file
downloads by job id or by ref and job name, keep, and the two deletes.

Downloads accept job tokens and, on public projects, anonymous readers
(``authenticate_non_get!``). The archive goes out by the same decision as the runner's
download (``present_artifact``: X-Sendfile, 302 to object storage, or send-url), with direct
download asked for, as ``present_carrierwave_file!`` does by default. Single files go out as
Workhorse ``artifacts-entry`` send-data.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import clock
from app.api.entities.job import job_entity
from app.api.file_helpers import present_artifact, send_artifacts_entry
from app.api.project_request import GrapeRoute, asker, entity_context, path_integer, user_job, user_project
from app.errors import APIError, forbidden, not_found, param_error
from app.finders import jobs_finder
from app.finders.jobs_finder import JobRecord, artifacts_expired
from app.finders.project_finder import ProjectAccess
from app.instrumentation import note_step
from app.models import ArtifactLocked
from app.services.ci.job_artifacts import delete_service, expire_project_build_artifacts_service, keep_artifacts
from app.services.projects.build_artifacts_size_refresh import reject_if_build_artifacts_size_refreshing
from app.state import AppState, get_state
from app.uploaders.job_artifact_uploader import artifact_key


def bad_request() -> APIError:
    """``bad_request!`` without a reason."""
    return APIError(400, "400 Bad request")


def artifact_path(request: Request) -> str:
    """``Gitlab::Ci::Build::Artifacts::Path#valid?``: no NUL byte, valid UTF-8 (checked on the
    raw request path, before the server's decoding replaced bad bytes)."""
    raw = request.scope.get("raw_path") or b""
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request() from None
    path = str(request.path_params["artifact_path"])
    if "\0" in path:
        raise bad_request()
    return path


def job_name(request: Request) -> str:
    """``requires :job, type: String``."""
    name = request.query_params.get("job")
    if name is None:
        raise param_error("job is missing")
    return name


def authorize_read_job_artifacts(access: ProjectAccess, record: JobRecord) -> None:
    archive = record.archive
    if not access.can_read_job_artifacts(archive.accessibility if archive else None):
        note_step("Does user have :read_job_artifacts access? no")
        raise forbidden()


async def _readable_build(request: Request, state: AppState, *, by_ref: bool) -> JobRecord:
    """The route's job after ``authorize_download_artifacts!`` and ``authorize_read_job_artifacts!``."""
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=True, authenticate=False)
        name = job_name(request) if by_ref else ""
        job_id = 0 if by_ref else path_integer(request, "job_id")
        access = await user_project(request, session, current)
        if not access.can_read_build():
            raise forbidden()
        if by_ref:
            ref = str(request.path_params["ref_name"])
            record = await jobs_finder.latest_successful_build_for_ref(session, access.project_id, name, ref)
        else:
            record = await jobs_finder.find_build(session, access.project_id, job_id)
    authorize_read_job_artifacts(access, record)
    return record


async def _download(request: Request, *, by_ref: bool) -> Response:
    state = get_state(request)
    record = await _readable_build(request, state, by_ref=by_ref)
    return await present_artifact(request, record.archive, direct_download=True)


async def download_archive(request: Request) -> Response:
    """``GET /projects/:id/jobs/:job_id/artifacts``."""
    return await _download(request, by_ref=False)


async def download_archive_by_ref(request: Request) -> Response:
    """``GET /projects/:id/jobs/artifacts/:ref_name/download?job=<name>``."""
    return await _download(request, by_ref=True)


async def available_artifacts(state: AppState, record: JobRecord) -> bool:
    """``available_artifacts?``: not expired (or kept by a locked pipeline) and the archive is there."""
    archive = record.archive
    if archive is None:
        return False
    if artifacts_expired(record.job) and record.pipeline.locked != ArtifactLocked.artifacts_locked:
        return False
    return not state.settings.check_object_exists or await state.store.head(artifact_key(archive)) is not None


async def download_file(request: Request) -> Response:
    """``GET /projects/:id/jobs/:job_id/artifacts/*artifact_path`` (``legacy_send_artifacts_entry``:
    Workhorse picks the Content-Type by the file's extension)."""
    state = get_state(request)
    record = await _readable_build(request, state, by_ref=False)
    if not await available_artifacts(state, record):
        raise not_found()
    path = artifact_path(request)
    assert record.archive is not None
    return await send_artifacts_entry(state, record.archive, path)


async def download_file_by_ref(request: Request) -> Response:
    """``GET /projects/:id/jobs/artifacts/:ref_name/raw/*artifact_path?job=<name>``
    (``send_artifacts_entry``: Workhorse sniffs the bytes for a safe Content-Type)."""
    state = get_state(request)
    record = await _readable_build(request, state, by_ref=True)
    path = artifact_path(request)
    assert record.archive is not None
    return await send_artifacts_entry(state, record.archive, path, detect_content_type=True)


async def keep(request: Request) -> Response:
    """``POST /projects/:id/jobs/:job_id/artifacts/keep``: 200 with the job."""
    state = get_state(request)
    async with state.db.session() as session:
        access, job = await user_job(request, session, ProjectAccess.can_update_build)
        record = (await jobs_finder.preload(session, [job]))[0]
        if record.archive is None or artifacts_expired(job):
            raise not_found()
        await keep_artifacts.keep_artifacts(session, job)
        record = await jobs_finder.find_build(session, access.project_id, job.id)  # type: ignore[arg-type]
    return JSONResponse(job_entity(record, entity_context(request, access)))


async def delete_job_artifacts(request: Request) -> Response:
    """``DELETE /projects/:id/jobs/:job_id/artifacts``: 204; rows to ``ci_deleted_objects``."""
    state = get_state(request)
    async with state.db.session() as session:
        access, job = await user_job(request, session, ProjectAccess.can_destroy_artifacts)
        await reject_if_build_artifacts_size_refreshing(session, access.project_id)
        deleted = await delete_service.delete_job_artifacts(session, job.id)  # type: ignore[arg-type]
    note_step(f"Destroyed {deleted} artifacts; their files wait in ci_deleted_objects")
    return Response(status_code=204)


async def delete_project_artifacts(request: Request) -> Response:
    """``DELETE /projects/:id/artifacts``: 202; unlocked artifacts expire now (GitLab queues
    ``ExpireProjectBuildArtifactsWorker``; mockcoord does the work before answering)."""
    state = get_state(request)
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        access = await user_project(request, session, current)
        if not access.can_destroy_artifacts():
            raise forbidden()
        await reject_if_build_artifacts_size_refreshing(session, access.project_id)
        expired = await expire_project_build_artifacts_service.expire_project_artifacts(
            session, access.project_id, clock.now()
        )
    note_step(f"Expired {expired} unlocked artifacts")
    return JSONResponse({"message": "202 Accepted"}, status_code=202)


routes = [
    GrapeRoute(
        "/api/v4/projects/{id}/jobs/artifacts/{ref_name:path}/download",
        download_archive_by_ref,
        methods=["GET", "HEAD"],
    ),
    GrapeRoute(
        "/api/v4/projects/{id}/jobs/artifacts/{ref_name:path}/raw/{artifact_path:path}",
        download_file_by_ref,
        methods=["GET", "HEAD"],
    ),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/artifacts", download_archive, methods=["GET", "HEAD"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/artifacts", delete_job_artifacts, methods=["DELETE"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/artifacts/keep", keep, methods=["POST"]),
    GrapeRoute(
        "/api/v4/projects/{id}/jobs/{job_id}/artifacts/{artifact_path:path}",
        download_file,
        methods=["GET", "HEAD"],
    ),
    GrapeRoute("/api/v4/projects/{id}/artifacts", delete_project_artifacts, methods=["DELETE"]),
]

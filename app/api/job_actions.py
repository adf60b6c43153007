"""Acting on jobs and pipelines (``lib/api/ci/jobs.rb``, ``lib/api/ci/pipelines.rb``):
``POST /projects/:id/jobs/:job_id/cancel|retry|play|erase``, ``GET /projects/:id/jobs/:job_id/trace``,
``POST /projects/:id/pipelines/:pipeline_id/cancel|retry``, ``DELETE /projects/:id/pipelines/:pipeline_id``.

Users (personal, OAuth or basic-auth tokens) only: these routes take no job token. Checks run in
Grape's order, so a missing job is a 404 before a reporter's 403 where GitLab looks it up first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.api.entities.job import job_entity
from app.api.entities.pipeline import Presenter, has_warnings, pipeline_users
from app.api.params import optional_boolean
from app.api.project_request import GrapeRoute, asker, entity_context, path_integer, user_job, user_project
from app.api.runner_jobs import request_params, server_url
from app.auth.api_guard import ApiUser
from app.errors import APIError, bad_request, forbidden, param_error
from app.finders import jobs_finder
from app.finders.project_finder import ProjectAccess
from app.lib import ci_trace
from app.models import AccessLevel, Build, Pipeline
from app.services.ci import (
    build_cancel_service,
    build_erase_service,
    cancel_pipeline_service,
    destroy_pipeline_service,
    play_build_service,
    retry_job_service,
    retry_pipeline_service,
)
from app.services.ci.build_state import playable, retryable
from app.services.ci.retry_job_service import PlayVariable
from app.services.projects.build_artifacts_size_refresh import reject_if_build_artifacts_size_refreshing
from app.state import get_state
from app.uploaders.job_artifact_uploader import artifact_key


def _user_id(current: ApiUser | None) -> int | None:
    return current.user.id if current is not None else None


def _play_variables(raw: Any) -> list[PlayVariable]:
    """``optional :job_variables_attributes, type: Array do requires :key, :value, type: String``."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise param_error("job_variables_attributes is invalid")
    found = []
    for i, item in enumerate(raw):
        for name in ("key", "value"):
            if item.get(name) is None:
                raise param_error(f"job_variables_attributes[{i}][{name}] is missing")
            if isinstance(item[name], dict | list):
                raise param_error(f"job_variables_attributes[{i}][{name}] is invalid")
        found.append(PlayVariable(str(item["key"]), str(item["value"])))
    return found


async def _job_entity(
    request: Request, session: AsyncSession, access: ProjectAccess, job: Build, status: int
) -> Response:
    record = (await jobs_finder.preload(session, [job]))[0]
    return JSONResponse(job_entity(record, entity_context(request, access)), status_code=status)


async def cancel_job(request: Request) -> Response:
    state = get_state(request)
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        job_id = path_integer(request, "job_id")
        force = optional_boolean(await request_params(request), "force") or False
        access = await user_project(request, session, current)
        if not access.can_update_build():  # authorize_cancel_builds!
            raise forbidden()
        job = await jobs_finder.find_job(session, access.project_id, job_id)
        if force and not access.has_access(AccessLevel.MAINTAINER):
            raise forbidden()
        job = await build_cancel_service.cancel(state, session, job, force=force)
        return await _job_entity(request, session, access, job, 201)


async def retry_job(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        access, job = await user_job(request, session, None)
        if not access.can_update_build():  # authorize!(:retry_job, job), after the lookup
            raise forbidden()
        if not retryable(job):
            raise forbidden("Job is not retryable")
        clone = await retry_job_service.retry(session, job, _user_id(access.current))
        return await _job_entity(request, session, access, clone, 201)


async def play_job(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        job_id = path_integer(request, "job_id")
        variables = _play_variables((await request_params(request)).get("job_variables_attributes"))
        access = await user_project(request, session, current)
        if not access.can_read_build():  # authorize_read_builds!
            raise forbidden()
        job = await jobs_finder.find_job(session, access.project_id, job_id)
        if not access.can_update_build():  # authorize!(:play_job, job)
            raise forbidden()
        if not playable(job):
            raise bad_request("400 Bad request - Unplayable Job")
        await play_build_service.play(session, job, _user_id(current), variables)
        return await _job_entity(request, session, access, job, 200)  # the played job, even when retried


async def erase_job(request: Request) -> Response:
    """``POST /projects/:id/jobs/:job_id/erase``: 201 with the erased job."""
    state = get_state(request)
    async with state.db.session() as session:
        access, job = await user_job(request, session, ProjectAccess.can_update_build)  # authorize_update_builds!
        if not access.can_erase_build(job.user_id):  # authorize!(:erase_build, build)
            raise forbidden()
        if not await build_erase_service.erasable(session, job):
            raise forbidden("Job is not erasable!")
        await reject_if_build_artifacts_size_refreshing(session, access.project_id)
        job = await build_erase_service.erase(state, session, job, _user_id(access.current))
        return await _job_entity(request, session, access, job, 201)


async def job_trace(request: Request) -> Response:
    """The raw log: the live chunk while the job runs, then the archived ``trace`` artifact."""
    state = get_state(request)
    async with state.db.session() as session:
        _, job = await user_job(request, session, ProjectAccess.can_read_build)
        assert job.id is not None
        chunk = await ci_trace.live_chunk(session, job.id)
        stored = None if chunk is not None else await ci_trace.archived(session, job.id)
    headers = {"Content-Disposition": f'infile; filename="{job.id}.log"'}
    if stored is not None:
        return StreamingResponse(state.store.iter_range(artifact_key(stored)), media_type="text/plain", headers=headers)
    return Response(bytes(chunk.raw_data) if chunk else b"", media_type="text/plain", headers=headers)


async def _pipeline_for_update(request: Request, session: AsyncSession) -> tuple[ProjectAccess, Pipeline]:
    current = await asker(request, session, job_token_allowed=False, authenticate=True)
    pipeline_id = path_integer(request, "pipeline_id")
    access = await user_project(request, session, current)
    pipeline = await jobs_finder.find_pipeline(session, access.project_id, pipeline_id)
    if not access.can_update_build():  # authorize! :update_pipeline / :cancel_pipeline
        raise forbidden()
    return access, pipeline


async def _pipeline_entity(
    request: Request, session: AsyncSession, access: ProjectAccess, pipeline: Pipeline, status: int
) -> Response:
    await session.refresh(pipeline)
    presenter = await Presenter.for_project(session, access.project, server_url(request).url)
    user = (await pipeline_users(session, [pipeline])).get(pipeline.user_id) if pipeline.user_id else None  # type: ignore[arg-type]
    return JSONResponse(presenter.full(pipeline, user, await has_warnings(session, pipeline)), status_code=status)


async def cancel_pipeline(request: Request) -> Response:
    state = get_state(request)
    async with state.db.session() as session:
        access, pipeline = await _pipeline_for_update(request, session)
        await cancel_pipeline_service.cancel_pipeline(state, session, pipeline)
        return await _pipeline_entity(request, session, access, pipeline, 200)


async def retry_pipeline(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        access, pipeline = await _pipeline_for_update(request, session)
        await retry_pipeline_service.retry_pipeline(session, pipeline, _user_id(access.current))
        return await _pipeline_entity(request, session, access, pipeline, 201)


def _http_time(value: str) -> datetime | None:
    """``Time.parse`` of a header, for the forms clients send: an HTTP-date (RFC 1123, RFC 850,
    asctime) or ISO 8601; a time without a zone is UTC. Unparsable is None (``rescue nil``)."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def check_unmodified_since(request: Request, last_modified: datetime | None) -> None:
    """``check_unmodified_since!``: 412 when ``If-Unmodified-Since`` is older than the record's
    last change (to the microsecond: a header naming the very second of the change is older)."""
    header = request.headers.get("if-unmodified-since")
    since = _http_time(header) if header is not None else None
    if since is not None and last_modified is not None and last_modified > since:
        raise APIError(412, "412 Precondition Failed")


async def delete_pipeline(request: Request) -> Response:
    """``DELETE /projects/:id/pipelines/:pipeline_id`` (``destroy_conditionally!``): 204, empty."""
    state = get_state(request)
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        pipeline_id = path_integer(request, "pipeline_id")
        access = await user_project(request, session, current)
        pipeline = await jobs_finder.find_pipeline(session, access.project_id, pipeline_id)
        if not access.can_destroy_pipeline():  # authorize! :destroy_pipeline, pipeline
            raise forbidden()
        await reject_if_build_artifacts_size_refreshing(session, access.project_id)
        check_unmodified_since(request, pipeline.updated_at)
        await destroy_pipeline_service.destroy_pipeline(state, session, pipeline)
    return Response(status_code=204)


routes = [
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/retry", retry_job, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/play", play_job, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/erase", erase_job, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}/trace", job_trace, methods=["GET"]),
    GrapeRoute("/api/v4/projects/{id}/pipelines/{pipeline_id}/cancel", cancel_pipeline, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/pipelines/{pipeline_id}/retry", retry_pipeline, methods=["POST"]),
    GrapeRoute("/api/v4/projects/{id}/pipelines/{pipeline_id}", delete_pipeline, methods=["DELETE"]),
]

"""The runner's job lifecycle (``lib/api/ci/runner.rb``): register, verify and unregister a
runner; request a job; update it; append to its trace.

Bodies may be JSON or form-encoded, as Grape takes them; query parameters count too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.params import integer, optional_boolean
from app.api.runner_artifacts import job_id
from app.auth.runner_helpers import authenticate_job
from app.errors import APIError, bad_request, param_error
from app.lib import ci_trace
from app.models import INTEGER_RANGE
from app.presenters.build_runner_presenter import ServerURL, build_payload
from app.services.ci import append_build_trace_service, register_job_service, register_runner_service
from app.services.ci.register_runner_service import ACCESS_LEVELS, Registration
from app.services.ci.update_build_state_service import StateUpdate, update_state
from app.state import get_state

RUNNER_TOKEN_HEADER = "runner-token"
JOB_TOKEN_HEADER = "job-token"
LAST_UPDATE_HEADER = "X-GitLab-Last-Update"
UPDATE_INTERVAL_HEADER = "X-GitLab-Trace-Update-Interval"


async def request_params(request: Request) -> dict[str, Any]:
    """Query parameters, overlaid by a JSON object or a form body."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
        if "tag_list[]" in form:
            params["tag_list"] = [str(v) for v in form.getlist("tag_list[]")]
        return params
    raw = await request.body()
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad_request("400 Bad Request - body is not valid JSON") from None
        if not isinstance(body, dict):
            raise bad_request("400 Bad Request - body must be a JSON object")
        params.update(body)
    return params


def _string(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise param_error(f"{name} is invalid")
    return str(value)


def _tag_list(params: Mapping[str, Any]) -> tuple[str, ...]:
    """``Array[String]`` with ``CommaSeparatedToArray``: a list, or ``"a, b"``."""
    value = params.get("tag_list")
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(t for t in (str(i).strip() for i in items) if t)


def runner_token(request: Request, params: Mapping[str, Any]) -> str:
    """``token`` in the body or query, else the ``RUNNER-TOKEN`` header (runner 17.11+ sends both)."""
    token = _string(params, "token") or request.headers.get(RUNNER_TOKEN_HEADER)
    if not token:
        raise param_error("token is missing")
    return token


def server_url(request: Request) -> ServerURL:
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    return ServerURL(scheme=scheme.split(",")[0].strip(), host=host)


def _no_content(last_update: str) -> Response:
    return Response(status_code=204, headers={LAST_UPDATE_HEADER: last_update})


async def register(request: Request) -> Response:
    params = await request_params(request)
    token = runner_token(request, params)
    access_level = _string(params, "access_level")
    if access_level is not None and access_level not in ACCESS_LEVELS:
        raise param_error("access_level does not have a valid value")
    paused, active = optional_boolean(params, "paused"), optional_boolean(params, "active")
    if paused is not None and active is not None:
        raise param_error("active, paused are mutually exclusive")
    run_untagged = optional_boolean(params, "run_untagged")
    spec = Registration(
        description=_string(params, "description") or "",
        maintenance_note=_string(params, "maintenance_note") or _string(params, "maintainer_note"),
        tag_list=_tag_list(params),
        run_untagged=True if run_untagged is None else run_untagged,
        locked=bool(optional_boolean(params, "locked")),
        access_level=ACCESS_LEVELS[access_level or "not_protected"],
        maximum_timeout=integer(params, "maximum_timeout"),
        active=(not paused) if paused is not None else (active if active is not None else True),
    )
    async with get_state(request).db.session() as session:
        runner = await register_runner_service.register(session, token, spec)
    return JSONResponse(register_runner_service.details(runner), status_code=201)


async def verify(request: Request) -> Response:
    params = await request_params(request)
    token = runner_token(request, params)
    async with get_state(request).db.session() as session:
        runner = await register_runner_service.authenticate_runner(session, token)
        await register_runner_service.heartbeat(session, runner)
    return JSONResponse(register_runner_service.details(runner), status_code=200)


async def unregister(request: Request) -> Response:
    params = await request_params(request)
    token = runner_token(request, params)
    async with get_state(request).db.session() as session:
        runner = await register_runner_service.authenticate_runner(session, token)
        await register_runner_service.unregister(session, runner)
    return Response(status_code=204)


async def request_job(request: Request) -> Response:
    """201 with the job, or 204 with ``X-GitLab-Last-Update``; a paused runner gets 204 too
    (GitLab's ``unless current_runner.active?``), an unknown one 403."""
    params = await request_params(request)
    token = runner_token(request, params)
    last_update = _string(params, "last_update")
    async with get_state(request).db.session() as session:
        runner = await register_runner_service.authenticate_runner(session, token)
        await register_runner_service.heartbeat(session, runner, params.get("info"))
        current = await register_job_service.queue_value(session, runner)
        if not runner.active:
            return _no_content(current)
        if last_update and last_update == current:
            return _no_content(last_update)
        job = await register_job_service.assign(session, runner)
        if job is None:
            return _no_content(current)
        payload = await build_payload(session, job, runner, server_url(request), get_state(request).settings)
    return JSONResponse(payload, status_code=201)


def job_token(request: Request, params: Mapping[str, Any]) -> str:
    """``token`` param, else ``JOB-TOKEN`` (``API::Ci::Helpers::Runner#job_token``)."""
    return _string(params, "token") or request.headers.get(JOB_TOKEN_HEADER) or ""


async def update_job(request: Request) -> Response:
    state, id = get_state(request), job_id(request)
    params = await request_params(request)
    exit_code = integer(params, "exit_code")
    if exit_code is not None and exit_code not in INTEGER_RANGE:  # the column's range, not a 500
        raise param_error("exit_code is invalid")
    async with state.db.session() as session:
        ctx = await authenticate_job(session, id, job_token(request, params))
        status = await update_state(
            state,
            session,
            ctx.job,
            StateUpdate(
                state=_string(params, "state") or "",
                failure_reason=_string(params, "failure_reason"),
                exit_code=exit_code,
            ),
        )
    return Response(
        str(status).encode(),
        status_code=status,
        media_type="application/json",
        headers={UPDATE_INTERVAL_HEADER: str(ci_trace.UPDATE_INTERVAL)},
    )


async def patch_trace(request: Request) -> Response:
    state, id = get_state(request), job_id(request)
    token = request.query_params.get("token") or request.headers.get(JOB_TOKEN_HEADER) or ""
    async with state.db.session() as session:
        ctx = await authenticate_job(session, id, token)
        content_range = request.headers.get("content-range")
        if content_range is None:
            raise bad_request("400 Missing header Content-Range")
        body = await request.body()
        job_status = ctx.job.status  # read before ``append``, whose rollback expires the job
        result = await append_build_trace_service.append(
            session, ctx.job, body, append_build_trace_service.parse_range_start(content_range)
        )
        if result.status == 416:
            raise APIError(416, "416 Range Not Satisfiable", headers={"Range": f"0-{result.size}"})
    return Response(
        status_code=202,
        headers={
            "Job-Status": job_status,
            "Range": f"0-{result.size}",
            UPDATE_INTERVAL_HEADER: str(ci_trace.UPDATE_INTERVAL),
        },
    )


routes = [
    Route("/api/v4/runners", register, methods=["POST"]),
    Route("/api/v4/runners", unregister, methods=["DELETE"]),
    Route("/api/v4/runners/verify", verify, methods=["POST"]),
    Route("/api/v4/jobs/request", request_job, methods=["POST"]),
    Route("/api/v4/jobs/{id}", update_job, methods=["PUT"]),
    Route("/api/v4/jobs/{id}/trace", patch_trace, methods=["PATCH"]),
]

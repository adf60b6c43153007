"""The runner's artifact endpoints (``lib/api/ci/runner.rb``), behind Workhorse.

Plain Starlette routes: parameters are parsed the Grape way by hand anyway, and the
download route is the hot path, where FastAPI's dependency machinery would cost more
than the database query.
"""

from __future__ import annotations

from collections.abc import Mapping

import jwt
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.file_helpers import present_artifact
from app.api.params import boolean, enum_value, id_param, integer
from app.auth.auth_finders import credentials, runner_job_token
from app.auth.dependent_job import authorize_download
from app.auth.runner_helpers import authenticate_job
from app.errors import bad_request, forbidden, param_error
from app.models import Accessibility, FileFormat, FileType
from app.services.ci.job_artifacts import create_service
from app.services.ci.job_artifacts.create_service import UploadedFile, UploadParams
from app.state import AppState, get_state
from app.workhorse_api import (
    INTERNAL_API_CONTENT_TYPE,
    INTERNAL_API_REQUEST_HEADER,
    MULTIPART_FIELDS_HEADER,
    decode_with_issuer,
    verify_api_request,
)


def job_id(request: Request) -> int:
    """Grape's ``requires :id, type: Integer``."""
    return id_param(request.path_params, "id")


def require_gitlab_workhorse(request: Request, state: AppState) -> None:
    """A bad or missing signed JWT is a bare 403 (newest GitLab); a request without the
    ``Gitlab-Workhorse`` header says why (what older GitLab said first)."""
    try:
        verify_api_request(request.headers.get(INTERNAL_API_REQUEST_HEADER), state.secret)
    except jwt.PyJWTError:
        raise forbidden() from None
    if not request.headers.get("gitlab-workhorse"):
        raise forbidden("Request should be executed via GitLab Workhorse")


def upload_params(params: Mapping[str, str]) -> UploadParams:
    return UploadParams(
        artifact_type=enum_value(params, "artifact_type", FileType, "archive"),
        artifact_format=enum_value(params, "artifact_format", FileFormat, "zip"),
        expire_in=params.get("expire_in") or None,
        accessibility=enum_value(params, "accessibility", Accessibility, "public"),
        filesize=integer(params, "filesize"),
    )


async def authorize(request: Request) -> Response:
    state, id = get_state(request), job_id(request)
    params = upload_params(request.query_params)
    require_gitlab_workhorse(request, state)
    async with state.db.session() as session:
        ctx = await authenticate_job(session, id, runner_job_token(request))
        body = await create_service.authorize(state, session, ctx, params)
    return JSONResponse(body, media_type=INTERNAL_API_CONTENT_TYPE)


def _uploaded(form: FormData, field: str, rewritten: Mapping[str, str], secret: bytes) -> UploadedFile | None:
    """GitLab's multipart middleware trusts only the signed ``<field>.gitlab-workhorse-upload``."""
    token = form.get(f"{field}.gitlab-workhorse-upload")
    if token is None:
        if any(k.startswith(f"{field}.") for k in form):
            raise bad_request(f"{field} was not rewritten by GitLab Workhorse")
        return None
    if field not in rewritten:
        raise bad_request(f"{field} is not among the fields Workhorse rewrote")
    try:
        claims = decode_with_issuer(str(token), secret)
    except jwt.PyJWTError:
        raise bad_request(f"invalid {field}.gitlab-workhorse-upload token") from None
    return UploadedFile.from_claims(claims.get("upload") or {})


async def upload(request: Request) -> Response:
    state, id = get_state(request), job_id(request)
    params = upload_params(request.query_params)
    require_gitlab_workhorse(request, state)
    try:
        rewritten = decode_with_issuer(request.headers.get(MULTIPART_FIELDS_HEADER, ""), state.secret).get(
            "rewritten_fields", {}
        )
    except jwt.PyJWTError:
        rewritten = {}
    try:
        form = await request.form(max_files=0, max_fields=200)
    except MultiPartException as exc:
        raise bad_request(f"invalid multipart body: {exc.message}") from None
    merged = {**{k: str(v) for k, v in form.items()}, **request.query_params}
    params = upload_params(merged)
    async with state.db.session() as session:
        ctx = await authenticate_job(session, id, runner_job_token(request) or str(form.get("token") or ""))
        file = _uploaded(form, "file", rewritten, state.secret)
        if file is None:
            raise param_error("file is missing")
        metadata = _uploaded(form, "metadata", rewritten, state.secret)
        await create_service.create(state, session, ctx, params, file, metadata)
    return Response(b"201", status_code=201, media_type="application/json")


async def download(request: Request) -> Response:
    state, id = get_state(request), job_id(request)
    direct = boolean(request.query_params, "direct_download")
    download = await authorize_download(state.db, id, credentials(request))
    return await present_artifact(request, download.archive, direct_download=direct)


routes = [
    Route("/api/v4/jobs/{id}/artifacts/authorize", authorize, methods=["POST"]),
    Route("/api/v4/jobs/{id}/artifacts", upload, methods=["POST"]),
    Route("/api/v4/jobs/{id}/artifacts", download, methods=["GET", "HEAD"]),
]

"""Pipelines (``lib/api/ci/pipelines.rb``): create one from the project's ``.gitlab-ci.yml``,
list them, show one.

``:id`` is a project id or its URL-encoded full path, as in GitLab.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.entities.pipeline import Presenter, has_warnings, pipeline_users
from app.api.pagination import page_params
from app.api.project_request import asker, path_integer, user_project
from app.api.runner_jobs import request_params, server_url
from app.errors import APIError, forbidden, param_error
from app.finders.project_finder import ProjectAccess
from app.models import BuildStatus, Pipeline, User, row_offset
from app.policies.project_policy import can_create_pipeline
from app.services.ci.create_pipeline_service import VARIABLE_TYPES, PipelineError, Variable, create_pipeline
from app.state import get_state

SCOPES = {"running", "pending", "finished", "branches", "tags"}
ORDER_BY = {"id", "status", "ref", "updated_at", "user_id"}
FINISHED = [BuildStatus.success, BuildStatus.failed, BuildStatus.canceled]
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_FORM_VARIABLE = re.compile(r"^variables\[(\d*)\]\[(\w+)\]$")


def _form_variables(form: FormData) -> list[dict[str, str]] | None:
    """Rack's nested form params: ``variables[][key]=A&variables[][value]=1`` (a key seen
    twice starts the next hash) or ``variables[0][key]=A``."""
    found: list[dict[str, str]] = []
    indexed: dict[int, dict[str, str]] = {}
    for name, value in form.multi_items():
        match = _FORM_VARIABLE.match(name)
        if match is None:
            continue
        index, field = match.groups()
        if index:
            indexed.setdefault(int(index), {})[field] = str(value)
        else:
            if not found or field in found[-1]:
                found.append({})
            found[-1][field] = str(value)
    if indexed:
        found.extend(indexed[i] for i in sorted(indexed))
    return found or None


def _variables(raw: Any) -> list[Variable]:
    """Grape's ``optional :variables, type: Array`` of ``{key, value, variable_type}``."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise param_error("variables is invalid")
    result = []
    for i, item in enumerate(raw):
        for field in ("key", "value", "variable_type"):
            if isinstance(item.get(field), dict | list):
                raise param_error(f"variables[{i}][{field}] is invalid")
        variable_type = str(item.get("variable_type") or "env_var")
        if variable_type not in VARIABLE_TYPES:
            raise param_error(f"variables[{i}][variable_type] does not have a valid value")
        key = "" if item.get("key") is None else str(item["key"])
        if not re.fullmatch(r"[a-zA-Z0-9_]{1,255}", key):
            # Ci::PipelineVariable's validations fail the save (Chain::Create's rescue).
            raise APIError(400, {"base": ["Failed to persist the pipeline: Validation failed: Variables is invalid"]})
        value = "" if item.get("value") is None else str(item["value"])
        result.append(Variable(key, value, variable_type))
    return result


async def create(request: Request) -> Response:
    state = get_state(request)
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        assert current is not None
        user = current.user
        params = await request_params(request)
        raw_variables = params.get("variables")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if raw_variables is None and content_type in FORM_TYPES:
            raw_variables = _form_variables(await request.form())
        ref = params.get("ref")
        if ref is None:
            raise param_error("ref is missing")
        if isinstance(ref, dict | list):
            raise param_error("ref is invalid")
        variables = _variables(raw_variables)
        access = await user_project(request, session, current)
        if not can_create_pipeline(access.reader):
            raise forbidden()
        try:
            pipeline = await create_pipeline(state, session, access.project, user, str(ref), variables)
        except PipelineError as exc:
            raise APIError(400, {"base": [str(exc)]}) from None
        presenter = await Presenter.for_project(session, access.project, server_url(request).url)
        body = presenter.full(pipeline, user, await has_warnings(session, pipeline))
    return JSONResponse(body, status_code=201)


async def _readable(session: AsyncSession, request: Request) -> ProjectAccess:
    """``user_project`` plus ``authorize! :read_pipeline`` (as ``read_build``)."""
    current = await asker(request, session, job_token_allowed=False, authenticate=False)
    access = await user_project(request, session, current)
    if not access.can_read_build():
        raise forbidden()
    return access


async def show(request: Request) -> Response:
    pipeline_id = path_integer(request, "pipeline_id")
    async with get_state(request).db.session() as session:
        access = await _readable(session, request)
        pipeline = await session.get(Pipeline, pipeline_id)
        if pipeline is None or pipeline.project_id != access.project.id:
            raise APIError(404, "404 Not found")
        presenter = await Presenter.for_project(session, access.project, server_url(request).url)
        users = await pipeline_users(session, [pipeline])
        user = users.get(pipeline.user_id) if pipeline.user_id else None  # type: ignore[arg-type]
        return JSONResponse(presenter.with_metadata(pipeline, user, await has_warnings(session, pipeline)))


def _choice(params: Mapping[str, Any], name: str, allowed: set[str], default: str | None = None) -> str | None:
    value = params.get(name) or default
    if value is not None and value not in allowed:
        raise param_error(f"{name} does not have a valid value")
    return value


async def index(request: Request) -> Response:
    """``Ci::PipelinesFinder``, newest first by default, paginated the GitLab way."""
    params = dict(request.query_params)
    scope = _choice(params, "scope", SCOPES)
    status = _choice(params, "status", {s.value for s in BuildStatus})
    order_by = _choice(params, "order_by", ORDER_BY, "id")
    sort = _choice(params, "sort", {"asc", "desc"}, "desc")
    paging = page_params(params)
    page, per_page = paging.page, paging.per_page
    async with get_state(request).db.session() as session:
        access = await _readable(session, request)
        query: Any = select(Pipeline).where(Pipeline.project_id == access.project.id)
        for name in ("ref", "sha", "source"):
            if params.get(name):
                query = query.where(getattr(Pipeline, name) == params[name])
        if status:
            query = query.where(Pipeline.status == status)
        if scope in ("running", "pending"):
            query = query.where(Pipeline.status == scope)
        elif scope == "finished":
            query = query.where(col(Pipeline.status).in_(FINISHED))
        elif scope in ("branches", "tags"):
            latest = (
                select(func.max(Pipeline.id))
                .where(Pipeline.project_id == access.project.id, Pipeline.tag == (scope == "tags"))
                .group_by(col(Pipeline.ref))
            )
            query = query.where(col(Pipeline.id).in_(latest))
        if params.get("username"):
            query = query.join(User, col(User.id) == col(Pipeline.user_id)).where(User.username == params["username"])
        total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
        column = col(getattr(Pipeline, order_by or "id"))
        ordering = [column.asc() if sort == "asc" else column.desc()]
        if order_by != "id":
            ordering.append(col(Pipeline.id).asc() if sort == "asc" else col(Pipeline.id).desc())
        pipelines = list(
            (await session.exec(query.order_by(*ordering).offset(row_offset(page, per_page)).limit(per_page))).all()
        )
        presenter = await Presenter.for_project(session, access.project, server_url(request).url)
        body = [presenter.basic_with_metadata(p) for p in pipelines]
    return JSONResponse(body, headers=_pagination_headers(request, page, per_page, int(total)))


def _pagination_headers(request: Request, page: int, per_page: int, total: int) -> dict[str, str]:
    """``Gitlab::Pagination::OffsetPagination``: X-* headers and a Link header."""
    pages = max(1, math.ceil(total / per_page))
    links = []

    def url(number: int) -> str:
        return str(request.url.include_query_params(page=number, per_page=per_page))

    if page > 1:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if page < pages:
        links.append(f'<{url(page + 1)}>; rel="next"')
    links += [f'<{url(1)}>; rel="first"', f'<{url(pages)}>; rel="last"']
    return {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "Link": ", ".join(links),
    }


routes = [
    Route("/api/v4/projects/{id:path}/pipeline", create, methods=["POST"]),
    Route("/api/v4/projects/{id:path}/pipelines", index, methods=["GET"]),
    Route("/api/v4/projects/{id:path}/pipelines/{pipeline_id}", show, methods=["GET"]),
]

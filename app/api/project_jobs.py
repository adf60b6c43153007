"""Reading jobs through the project API: ``GET /projects/:id/jobs``, ``GET /projects/:id/jobs/:job_id``
(``lib/api/ci/jobs.rb``: ``authenticate!`` first, no job tokens) and
``GET /projects/:id/pipelines/:pipeline_id/jobs`` (``lib/api/ci/pipelines.rb``: anonymous
readers of public projects and job tokens allowed).

Checks run in Grape's order: authentication, parameter validation, ``user_project``,
``authorize!``, then the record lookups.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.entities.job import job_entity
from app.api.pagination import PageParams, page_params, pagination_headers
from app.api.params import optional_boolean
from app.api.project_request import GrapeRoute, asker, entity_context, path_integer, user_job, user_project
from app.errors import forbidden, param_error
from app.finders import jobs_finder
from app.finders.jobs_finder import AVAILABLE_STATUSES, Page
from app.finders.project_finder import ProjectAccess
from app.state import get_state


def scope_param(query: QueryParams) -> list[str] | None:
    """``optional :scope, type: Array[String], values: AVAILABLE_STATUSES`` with GitLab's
    ``coerce_with``: ``scope=x``, ``scope[]=x&scope[]=y`` and ``scope[0]=x`` all work."""
    items = [(k, v) for k, v in query.multi_items() if k == "scope" or k.startswith("scope[")]
    if not items:
        return None
    listed = [v for k, v in items if k == "scope[]"]
    hashed = [v for k, v in items if k.endswith("]") and k != "scope[]"]
    plain = [v for k, v in items if k == "scope"]
    values = listed or hashed or plain[-1:]
    if not values or any(v not in AVAILABLE_STATUSES for v in values):
        raise param_error("scope does not have a valid value")
    return values


def grape_params(request: Request, coerced: dict[str, Any]) -> dict[str, Any]:
    """Grape's ``params`` as the Link header repeats them: query, route parameters, and the
    declared ones after coercion and defaults."""
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if not k.startswith("scope")}
    params.update(request.path_params)
    params.update({k: v for k, v in coerced.items() if v is not None})
    return params


def page_response(request: Request, access: ProjectAccess, page: Page, paging: PageParams, params: dict) -> Response:
    ctx = entity_context(request, access)
    headers = pagination_headers(request, params, paging, has_next=page.has_next, total=page.total)
    return JSONResponse([job_entity(r, ctx) for r in page.records], headers=headers)


async def list_project_jobs(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=True)
        scope, paging = scope_param(request.query_params), page_params(request.query_params)
        access = await user_project(request, session, current)
        if not access.can_read_build():
            raise forbidden()
        page = await jobs_finder.project_jobs(session, access.project_id, scope, paging.page, paging.per_page)
    params = grape_params(request, {"scope": scope, "page": paging.page, "per_page": paging.per_page})
    return page_response(request, access, page, paging, params)


async def get_project_job(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        access, job = await user_job(request, session, ProjectAccess.can_read_build)
        record = (await jobs_finder.preload(session, [job]))[0]
    return JSONResponse(job_entity(record, entity_context(request, access)))


async def list_pipeline_jobs(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        current = await asker(request, session, job_token_allowed=True, authenticate=False)
        pipeline_id = path_integer(request, "pipeline_id")
        include_retried = optional_boolean(request.query_params, "include_retried") or False
        scope, paging = scope_param(request.query_params), page_params(request.query_params)
        access = await user_project(request, session, current)
        if not access.can_read_build():
            raise forbidden()
        pipeline = await jobs_finder.find_pipeline(session, access.project_id, pipeline_id)
        page = await jobs_finder.pipeline_jobs(
            session, pipeline, scope, paging.page, paging.per_page, include_retried=include_retried
        )
    coerced = {
        "pipeline_id": pipeline_id,
        "include_retried": include_retried,
        "scope": scope,
        "page": paging.page,
        "per_page": paging.per_page,
    }
    return page_response(request, access, page, paging, grape_params(request, coerced))


routes = [
    GrapeRoute("/api/v4/projects/{id}/jobs", list_project_jobs, methods=["GET"]),
    GrapeRoute("/api/v4/projects/{id}/jobs/{job_id}", get_project_job, methods=["GET"]),
    GrapeRoute("/api/v4/projects/{id}/pipelines/{pipeline_id}/jobs", list_pipeline_jobs, methods=["GET"]),
]

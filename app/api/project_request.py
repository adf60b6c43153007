"""What every ``/projects/:id/...`` route starts with: the asker, then ``user_project``.

``:id`` is a numeric id or a URL-encoded full path (``demo%2Fapp``). Rack matches routes on
the raw path and decodes parameters afterwards, so ``%2F`` stays inside one segment;
``GrapeRoute`` does the same (the ASGI server's ``path`` is already decoded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Scope

from app.api.entities.job import EntityContext
from app.api.params import id_param
from app.api.runner_jobs import server_url
from app.auth.api_guard import ApiUser, find_current_user
from app.auth.auth_finders import credentials
from app.errors import forbidden, unauthorized
from app.finders import jobs_finder
from app.finders.project_finder import ProjectAccess, find_project
from app.models import Build

READ_METHODS = {"GET", "HEAD"}


class GrapeRoute(Route):
    """A route matched against the raw request path; its parameters are then percent-decoded."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path")
        if scope["type"] != "http" or not raw:
            return super().matches(scope)
        path = raw.decode("latin-1").split("?", 1)[0]
        match, child = super().matches({**scope, "path": path, "root_path": ""})
        if match != Match.NONE:
            params: dict[str, Any] = child["path_params"]
            child["path_params"] = {k: unquote(v) if isinstance(v, str) else v for k, v in params.items()}
        return match, child


async def asker(
    request: Request, session: AsyncSession, *, job_token_allowed: bool, authenticate: bool
) -> ApiUser | None:
    """Grape's ``before`` block: the current user (401 for a wrong token), and a 401 for nobody
    where the route says ``authenticate!`` (or ``authenticate_non_get!`` on a write)."""
    current = await find_current_user(
        session,
        credentials(request),
        job_token_allowed=job_token_allowed,
        write=request.method not in READ_METHODS,
    )
    if current is None and (authenticate or request.method not in READ_METHODS):
        raise unauthorized()
    return current


async def user_project(request: Request, session: AsyncSession, current: ApiUser | None) -> ProjectAccess:
    """``user_project``: 404 ``Project Not Found`` / the job token's 403, as ``find_project!``."""
    return await find_project(session, request.path_params["id"], current)


async def user_job(
    request: Request, session: AsyncSession, authorized: Callable[[ProjectAccess], bool] | None
) -> tuple[ProjectAccess, Build]:
    """A user's ``/projects/:id/jobs/:job_id`` route (no job tokens): ``authenticate!``, the ``job_id``
    parameter, ``user_project``, ``authorize!`` (when the route checks before the lookup), ``find_build!``."""
    current = await asker(request, session, job_token_allowed=False, authenticate=True)
    job_id = path_integer(request, "job_id")
    access = await user_project(request, session, current)
    if authorized is not None and not authorized(access):
        raise forbidden()
    return access, await jobs_finder.find_job(session, access.project_id, job_id)


def path_integer(request: Request, name: str) -> int:
    """Grape's ``requires :<name>, type: Integer`` for a route parameter (an id)."""
    return id_param(request.path_params, name)


def entity_context(request: Request, access: ProjectAccess) -> EntityContext:
    return EntityContext(base_url=server_url(request).url, project_full_path=access.full_path)

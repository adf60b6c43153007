"""``/-/mock/projects/:id/ci_config``: give a project a ``.gitlab-ci.yml`` without a
repository (or in place of the repository's), or take it away."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import not_found
from app.finders.project_finder import lookup_project
from app.lib import ci_config
from app.services.ci.config_source import set_project_ci_config, store_ci_config
from app.state import get_state
from mockctl.api.mock import require_admin


async def put_ci_config(request: Request) -> Response:
    """The project's ``.gitlab-ci.yml``: 200 with what it defines; 400 when the body is not
    a YAML mapping, 422 when the config is invalid (every message in ``errors``)."""
    state = await require_admin(request, get_state(request))
    async with state.db.session() as session:
        project = await lookup_project(session, request.path_params["id"])
        if project is None:
            raise not_found("Project")
        content = (await request.body()).decode("utf-8", errors="replace")
        try:
            config = await set_project_ci_config(session, project, content)
        except ci_config.ConfigError as exc:
            status = 400 if isinstance(exc, ci_config.FormatError) else 422
            return JSONResponse({"message": exc.errors[0], "errors": exc.errors}, status_code=status)
        await session.commit()
        return JSONResponse({"project_id": project.id, **config.summary()})


async def delete_ci_config(request: Request) -> Response:
    """Forget the project's config: its next pipeline is 'Missing CI config file'."""
    state = await require_admin(request, get_state(request))
    async with state.db.session() as session:
        project = await lookup_project(session, request.path_params["id"])
        if project is None:
            raise not_found("Project")
        await store_ci_config(session, project, None)
        await session.commit()
    return Response(status_code=204)


routes = [
    Route("/-/mock/projects/{id:path}/ci_config", put_ci_config, methods=["PUT"]),
    Route("/-/mock/projects/{id:path}/ci_config", delete_ci_config, methods=["DELETE"]),
]

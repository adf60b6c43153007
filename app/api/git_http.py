"""Git over smart HTTP at GitLab's URLs (``Repositories::GitHttpController``), read-only.

``GET /<namespace>/<project>.git/info/refs?service=git-upload-pack`` and
``POST /<namespace>/<project>.git/git-upload-pack`` serve fetches and clones once
``git_access`` allows them; ``git-receive-pack`` (push) is always refused, as GitLab refuses
it for a job token. Raw ASGI endpoints: the body streams into ``git http-backend`` while its
answer streams out, with nothing buffered.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.api.runner_jobs import server_url
from app.auth.auth_finders import basic_auth
from app.services.git import http_backend
from app.services.git.git_access import CHALLENGE, GitAccessDenied, authorize
from app.services.git.repositories import disk_path
from app.state import get_state

INFO_REFS = "info/refs"


class GitEndpoint:
    """One of ``info/refs``, ``git-upload-pack``, ``git-receive-pack`` under ``<path>.git/``."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method == "HEAD":  # deny_head_requests
            await Response(status_code=403)(scope, receive, send)
            return
        command = request.query_params.get("service") if self.action == INFO_REFS else self.action
        state = get_state(request)
        try:
            async with state.db.session() as session:
                project = await authorize(
                    session,
                    state.settings,
                    basic_auth(request),
                    scope["path_params"]["repository_path"],
                    command,
                    server_url(request).url,
                )
        except GitAccessDenied as exc:
            headers = {"WWW-Authenticate": CHALLENGE} if exc.status == 401 else None
            await PlainTextResponse(exc.message, exc.status, headers)(scope, receive, send)
            return
        path_info = f"/{disk_path(project.id)}.git/{self.action}"  # type: ignore[arg-type]
        await http_backend.serve(scope, receive, send, state.settings.repositories_path, path_info)


routes = [
    Route("/{repository_path:path}.git/info/refs", GitEndpoint(INFO_REFS), methods=["GET", "HEAD"]),
    Route("/{repository_path:path}.git/git-upload-pack", GitEndpoint("git-upload-pack"), methods=["POST"]),
    Route("/{repository_path:path}.git/git-receive-pack", GitEndpoint("git-receive-pack"), methods=["POST"]),
]

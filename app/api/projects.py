"""``GET /projects/:id`` (``lib/api/projects.rb``): a project as its asker may see it, and with
``statistics=true`` its storage usage (the administrator page's "usage quota": artifacts as
``statistics.job_artifacts_size``) for users with at least reporter access (``read_statistics``:
``reporter_access``, admins included).

Anonymous readers of a public project get ``BasicProjectDetails`` (never statistics); signed-in
users ``ProjectWithAccess``. Job tokens are not accepted on this route here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.entities.project import ProjectFacts, basic_project_details, project_with_access
from app.api.params import boolean
from app.api.project_request import GrapeRoute, asker, user_project
from app.api.runner_jobs import server_url
from app.finders.project_finder import ProjectAccess
from app.models import AccessLevel, Member, Namespace, ProjectCiCdSetting, ProjectStatistics, User
from app.presenters.build_runner_presenter import namespace_chain
from app.services.git import repositories
from app.state import get_state


async def _member_access(session: Any, user_id: int, source_type: str, source_id: int) -> dict[str, int] | None:
    """``ProjectAccess`` / ``GroupAccess``: the user's own membership row, if any."""
    level = (
        await session.exec(
            select(Member.access_level).where(
                and_(Member.user_id == user_id, Member.source_type == source_type, Member.source_id == source_id)
            )
        )
    ).first()
    return None if level is None else {"access_level": level, "notification_level": 3}


async def show(request: Request) -> Response:
    state = get_state(request)
    async with state.db.session() as session:
        current = await asker(request, session, job_token_allowed=False, authenticate=False)
        statistics = boolean(request.query_params, "statistics")
        access: ProjectAccess = await user_project(request, session, current)
        project = access.project
        chain = await namespace_chain(session, project.namespace_id)
        owner_ns: Namespace = chain[-1]
        owner = await session.get(User, owner_ns.owner_id) if owner_ns.type == "User" and owner_ns.owner_id else None
        stats = (
            await session.exec(select(ProjectStatistics).where(ProjectStatistics.project_id == project.id))
        ).first()
        ci_cd = (
            await session.exec(select(ProjectCiCdSetting).where(ProjectCiCdSetting.project_id == project.id))
        ).first()
        default_branch = await repositories.default_branch(state.settings, access.project_id)
        facts = ProjectFacts(project, chain, owner, default_branch, ci_cd, stats)
        base_url = server_url(request).url
        if current is None:
            return JSONResponse(basic_project_details(facts, base_url))
        group = chain[-1] if chain[-1].type == "Group" else None
        permissions = {
            "project_access": await _member_access(session, current.user.id, "Project", access.project_id),  # type: ignore[arg-type]
            "group_access": await _member_access(session, current.user.id, "Namespace", group.id)  # type: ignore[arg-type]
            if group
            else None,
        }
    body = project_with_access(
        facts,
        base_url,
        statistics=statistics and access.can_read_statistics(),
        can_admin=access.has_access(AccessLevel.MAINTAINER),
        permissions=permissions,
    )
    return JSONResponse(body)


routes = [GrapeRoute("/api/v4/projects/{id}", show, methods=["GET"])]

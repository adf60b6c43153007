"""``lib/api/features.rb``: GitLab's admin API for Flipper feature flags (boolean gates only).

``GET /features`` lists the persisted features (those with a gate row), ``POST
/features/:name`` with ``value`` (``true`` / ``false``) sets the boolean gate and answers
201, ``DELETE /features/:name`` removes the feature's gates (204). Administrators only (401
anonymous, 403 others). A flag GitLab's housekeeping reads has a ``definition``; any other
name is stored as GitLab stores it (``definition: null``). Percentage and actor gates are
not supported: 400 naming the value.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.project_request import asker
from app.api.runner_jobs import request_params
from app.errors import bad_request, forbidden, param_error
from app.lib import feature
from app.models import FeatureGate
from app.state import get_state


async def _admin(request: Request, session: AsyncSession) -> None:
    """``authenticated_as_admin!``."""
    current = await asker(request, session, job_token_allowed=False, authenticate=True)
    assert current is not None
    if not current.user.admin:
        raise forbidden()


def _definition(name: str) -> dict[str, Any] | None:
    known = feature.DEFINITIONS.get(name)
    if known is None:
        return None
    return {"name": name, "default_enabled": known.default()}


def _entity(name: str, gates: list[FeatureGate]) -> dict[str, Any]:
    """``API::Entities::Feature``: name, state, gates, definition."""
    boolean = next((g for g in gates if g.key == "boolean"), None)
    return {
        "name": name,
        "state": "on" if boolean is not None and boolean.value == "true" else "off",
        "gates": [{"key": "boolean", "value": boolean.value == "true"}] if boolean is not None else [],
        "definition": _definition(name),
    }


async def list_features(request: Request) -> Response:
    async with get_state(request).db.session() as session:
        await _admin(request, session)
        rows = (
            await session.exec(select(FeatureGate).order_by(col(FeatureGate.feature_key), col(FeatureGate.id)))
        ).all()
    by_name: dict[str, list[FeatureGate]] = {}
    for row in rows:
        by_name.setdefault(row.feature_key, []).append(row)
    return JSONResponse([_entity(name, gates) for name, gates in by_name.items()])


async def set_feature(request: Request) -> Response:
    name = request.path_params["name"]
    async with get_state(request).db.session() as session:
        await _admin(request, session)
        params = await request_params(request)
        if "value" not in params or params["value"] is None:
            raise param_error("value is missing")
        value = str(params["value"]).lower()
        if value not in ("true", "false", "0"):
            raise bad_request(
                f"400 Bad request - value {params['value']!r}: only boolean gates (true, false) are supported"
            )
        await session.exec(delete(FeatureGate).where(FeatureGate.feature_key == name))  # type: ignore[call-overload]
        gate = FeatureGate(feature_key=name, key="boolean", value="true" if value == "true" else "false")
        session.add(gate)
        await session.commit()
    return JSONResponse(_entity(name, [gate]), status_code=201)


async def delete_feature(request: Request) -> Response:
    name = request.path_params["name"]
    async with get_state(request).db.session() as session:
        await _admin(request, session)
        await session.exec(delete(FeatureGate).where(FeatureGate.feature_key == name))  # type: ignore[call-overload]
        await session.commit()
    return Response(status_code=204)


routes = [
    Route("/api/v4/features", list_features, methods=["GET"]),
    Route("/api/v4/features/{name}", set_feature, methods=["POST"]),
    Route("/api/v4/features/{name}", delete_feature, methods=["DELETE"]),
]

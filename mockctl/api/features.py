"""``/-/mock/features``: GitLab's feature flags that change housekeeping, and the release
imitated, switchable at run time.

A flag's gate is a Flipper ``feature_gates`` row (what ``Feature.enable`` writes), so every
process sharing the database sees it at once; the release is shared through
``mockctl.shared_state``. An unset flag has the current release's default.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlmodel import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import unprocessable
from app.lib import feature, gitlab_version
from app.models import FeatureGate
from app.state import AppState
from mockctl import shared_state
from mockctl.api.housekeeping import json_body
from mockctl.api.mock import require_admin
from mockctl.seed.scenario import validation_message

router = APIRouter(prefix="/-/mock/features")


class FlagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None


class ReleaseChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gitlab_version: str | None

    @field_validator("gitlab_version")
    @classmethod
    def _release(cls, value: str | None) -> str | None:
        if value is not None:
            gitlab_version.parse(value)  # ValueError: "not a GitLab release (MAJOR.MINOR or newest): ..."
        return value


def unknown_flag(name: str) -> Exception:
    return unprocessable(f"{name}: unknown feature flag (known: {', '.join(feature.DEFINITIONS)})")


async def flag_view(session: AsyncSession, name: str) -> dict[str, Any]:
    definition = feature.definition(name)
    gate = await feature.gate(session, name)
    default = definition.default()
    return {
        "name": name,
        "effect": definition.effect,
        "default": default,
        "gate": gate,
        "enabled": default if gate is None else gate,
    }


async def view(state: AppState) -> dict[str, Any]:
    async with state.db.session() as session:
        flags = [await flag_view(session, name) for name in feature.DEFINITIONS]
    return {"gitlab_version": gitlab_version.render(gitlab_version.current()), "features": flags}


@router.get("")
async def list_features(state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """Every flag GitLab's housekeeping reads: its effect, the current release's default, the
    administrator's gate (``null``: never set) and the value in force."""
    return await view(state)


@router.put("")
async def switch_release(request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """``{"gitlab_version": "15.2"}``: imitate that release (its flag defaults, its bugs) in
    every process; ``null``: back to ``MOCKCOORD_GITLAB_VERSION``."""
    try:
        change = ReleaseChange.model_validate(await json_body(request))
    except ValidationError as exc:
        raise unprocessable(validation_message(exc)) from None
    await shared_state.change_version(state, change.gitlab_version)
    return await view(state)


@router.put("/{name}")
async def set_flag(name: str, request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """``{"enabled": true | false}`` sets the gate (``Feature.enable`` / ``disable``);
    ``{"enabled": null}`` removes it (``Feature.remove``): the release's default again."""
    if name not in feature.DEFINITIONS:
        raise unknown_flag(name)
    try:
        change = FlagChange.model_validate(await json_body(request))
    except ValidationError as exc:
        raise unprocessable(validation_message(exc)) from None
    async with state.db.session() as session:
        await session.exec(delete(FeatureGate).where(FeatureGate.feature_key == name))  # type: ignore[call-overload]
        if change.enabled is not None:
            session.add(FeatureGate(feature_key=name, key="boolean", value="true" if change.enabled else "false"))
        await session.commit()
        return await flag_view(session, name)

"""Runners: legacy registration with the instance token, authentication, unregistering
(``Ci::Runners::RegisterRunnerService``, ``authenticate_runner!``, ``UnregisterRunnerService``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.errors import forbidden
from app.lib import tokens
from app.models import Build, Runner, RunnerType
from app.services.ci.job_artifacts.max_artifact_size import application_settings

ACCESS_LEVELS = {"not_protected": 0, "ref_protected": 1}


@dataclass(frozen=True)
class Registration:
    description: str = ""
    maintenance_note: str | None = None
    tag_list: tuple[str, ...] = ()
    run_untagged: bool = True
    locked: bool = False
    access_level: int = 0
    maximum_timeout: int | None = None
    active: bool = True


async def register(session: AsyncSession, registration_token: str, spec: Registration) -> Runner:
    """An instance runner, when the token is the instance's registration token; else 403."""
    settings = await application_settings(session)
    expected = settings.runner_registration_token
    if not expected or not registration_token or not tokens.secure_compare(registration_token, expected):
        raise forbidden()
    runner = Runner(
        token=tokens.runner_token(),
        description=spec.description,
        runner_type=RunnerType.instance_type,
        active=spec.active,
        run_untagged=spec.run_untagged,
        locked=spec.locked,
        access_level=spec.access_level,
        maximum_timeout=spec.maximum_timeout,
        tag_list=list(spec.tag_list),
        contacted_at=clock.now(),
    )
    session.add(runner)
    await session.commit()
    return runner


async def authenticate_runner(session: AsyncSession, token: str) -> Runner:
    """``authenticate_runner!``: a runner with this token (paused ones too), with a heartbeat."""
    runner = (await session.exec(select(Runner).where(Runner.token == token))).first() if token else None
    if runner is None:
        raise forbidden()
    return runner


async def heartbeat(session: AsyncSession, runner: Runner, info: object = None) -> None:
    """Contact time, and the runner's ``info.features`` when a job request carries them."""
    runner.contacted_at = clock.now()
    features = info.get("features") if isinstance(info, dict) else None
    if isinstance(features, dict):
        runner.runtime_features = {str(k): v is True for k, v in features.items()}
    session.add(runner)
    await session.commit()


async def unregister(session: AsyncSession, runner: Runner) -> None:
    """The runner goes; its jobs keep their history without it (``runner_id`` nullified)."""
    await session.exec(update(Build).where(Build.runner_id == runner.id).values(runner_id=None))  # type: ignore[call-overload]
    await session.delete(runner)
    await session.commit()


def details(runner: Runner) -> dict[str, object]:
    """``Entities::Ci::RunnerRegistrationDetails``; a null expiry, so the runner never resets it."""
    return {"id": runner.id, "token": runner.token, "token_expires_at": clock.iso(runner.token_expires_at)}

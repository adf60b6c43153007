"""The mock control plane under ``/-/mock/``: seed, reset, and test shortcuts.

Guarded by an administrator's personal access token (``PRIVATE-TOKEN`` or Bearer).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app import clock
from app.auth import credentials
from app.errors import APIError, forbidden, not_found, unauthorized, unprocessable
from app.models import Build, BuildStatus
from app.services import tokens
from app.services.job_auth import user_from_personal_access_token
from app.services.reset import reset
from app.services.scenario import Scenario
from app.services.seed import SeedError, apply_scenario
from app.state import AppState, get_state

router = APIRouter(prefix="/-/mock")


async def require_admin(request: Request, state: AppState = Depends(get_state)) -> AppState:
    token = credentials(request).personal_access_token
    if not token:
        raise unauthorized()
    async with state.db.session() as session:
        user = await user_from_personal_access_token(session, token)
    if user is None:
        raise unauthorized()
    if not user.admin:
        raise forbidden()
    return state


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def parse_scenario(data: Any) -> Scenario:
    try:
        return Scenario.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise unprocessable(validation_message(exc)) from None


@router.post("/seed", status_code=201)
async def seed(request: Request, state: AppState = Depends(require_admin)) -> JSONResponse:
    try:
        data = await request.json() if await request.body() else {}
    except ValueError:
        raise APIError(400, "body is not valid JSON") from None
    scenario = parse_scenario(data)
    try:
        result = await apply_scenario(state, scenario)
    except SeedError as exc:
        raise unprocessable(str(exc)) from None
    return JSONResponse(asdict(result), status_code=201)


@router.post("/reset")
async def reset_instance(state: AppState = Depends(require_admin)) -> dict[str, str]:
    await reset(state)
    return {"message": "reset"}


@router.post("/jobs/{job_id}/start")
async def start_job(job_id: int, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """Put a job in ``running`` with a fresh token, as if a runner had picked it up."""
    async with state.db.session() as session:
        job = await session.get(Build, job_id)
        if job is None:
            raise not_found("Job")
        job.status = BuildStatus.running
        job.token = job.token or tokens.job_token()
        job.started_at = clock.now()
        job.finished_at = None
        session.add(job)
        await session.commit()
        return {"id": job.id, "token": job.token, "status": job.status, "project_id": job.project_id}

"""``/-/mock/housekeeping``: GitLab's housekeeping workers run now, and the page's expedite
snippet. See ``mockctl.housekeeping``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import APIError, unprocessable
from app.state import AppState
from mockctl import housekeeping
from mockctl.api.mock import require_admin
from mockctl.seed.scenario import validation_message

router = APIRouter(prefix="/-/mock/housekeeping")
NDJSON = "application/x-ndjson"


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker: Literal["expire", "unknown", "delete_objects", "all"]


async def json_body(request: Request) -> Any:
    if not await request.body():
        return {}
    try:
        return await request.json()
    except ValueError:
        raise APIError(400, "body is not valid JSON") from None


@router.post("/run")
async def run(request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """``{"worker": "expire" | "unknown" | "delete_objects" | "all"}``: the cron workers
    (``ExpireBuildArtifactsWorker``, ``Ci::UpdateLockedUnknownArtifactsWorker``,
    ``Ci::ScheduleDeleteObjectsCronWorker``; ``all`` in that order: unknown, expire,
    delete_objects) run now. Answers each run and the counts before and after."""
    try:
        wanted = RunRequest.model_validate(await json_body(request))
    except ValidationError as exc:
        raise unprocessable(validation_message(exc)) from None
    return await housekeeping.run(state, wanted.worker)


@router.get("")
async def show(_request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """The counts alone (artifacts by state, the deleted-object queue)."""
    return await housekeeping.counts(state)


@router.post("/expedite")
async def expedite(request: Request, state: AppState = Depends(require_admin)) -> Response:
    """Every deleted object's ``pick_up_at`` to now, then ``Ci::DeleteObjectsService`` until
    none is ready. ``Accept: application/x-ndjson`` streams one line a batch (``start``,
    ``batch``..., ``done``); otherwise the ``done`` summary alone."""
    if await json_body(request):
        raise unprocessable("body: expedite takes no parameters")
    if NDJSON in request.headers.get("accept", ""):

        async def lines() -> AsyncIterator[bytes]:
            async for step in housekeeping.expedite(state):
                yield json.dumps(step).encode() + b"\n"

        return StreamingResponse(lines(), media_type=NDJSON)
    summary: dict[str, Any] = {}
    async for step in housekeeping.expedite(state):
        summary = step
    summary.pop("event", None)
    return JSONResponse(summary)

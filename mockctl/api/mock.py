"""The mock control plane under ``/-/mock/``: seed, reset, and test shortcuts.

Guarded by an administrator's personal access token (``PRIVATE-TOKEN`` or Bearer).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlmodel import func, select

from app import clock
from app.auth.auth_finders import credentials
from app.auth.runner_helpers import user_from_personal_access_token
from app.errors import APIError, forbidden, not_found, unauthorized, unprocessable
from app.lib import tokens
from app.lib.chronic_duration import DurationParseError, parse_duration
from app.models import Build, BuildStatus, FileFormat, FileType, JobArtifact, Pipeline, record_id
from app.state import AppState, get_state
from mockctl import flows, shared_state
from mockctl.faults import SYNC_HEADER, FaultRule, encode_rules
from mockctl.instrument import instrument
from mockctl.journal import WORKHORSE_JOURNAL_HEADER, JournalFilter, workhorse_entries
from mockctl.reset import reset
from mockctl.seed.apply import SeedError, apply_scenario
from mockctl.seed.scenario import Scenario, validation_message

router = APIRouter(prefix="/-/mock")
# Times past it leave expiries (up to a thousand years) no room before a datetime's year 9999.
CLOCK_LIMIT = datetime(9000, 1, 1, tzinfo=UTC)


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
async def reset_instance(state: AppState = Depends(require_admin)) -> Response:
    await reset(state)
    return synced(state, JSONResponse({"message": "reset"}))


def synced(state: AppState, response: Response) -> Response:
    """Every answer that may change the rules tells Workhorse the ones it carries out."""
    response.headers[SYNC_HEADER] = encode_rules(r for r in instrument(state).faults.rules if r.component != "rails")
    return response


@router.post("/faults", status_code=201)
async def add_fault(request: Request, state: AppState = Depends(require_admin)) -> Response:
    """A rule: ``component`` (workhorse, rails, storage), conditions (``method``, ``path``
    regex, ``job_id``, ``header``) and one effect (``status`` with ``body``/``headers``,
    ``delay``, ``bandwidth``, ``reset_after``, ``truncate_after``, ``drop``), ``times`` or
    ``probability``."""
    try:
        rule = FaultRule.model_validate(await request.json())
    except ValidationError as exc:
        raise unprocessable(validation_message(exc)) from None
    except ValueError:
        raise APIError(400, "body is not valid JSON") from None
    if rule.id or rule.hits:
        raise unprocessable("id and hits are set by the coordinator")
    added = instrument(state).faults.add(rule)
    return synced(state, JSONResponse(added.model_dump(), status_code=201))


@router.get("/faults")
async def list_faults(state: AppState = Depends(require_admin)) -> Response:
    return synced(state, JSONResponse([r.model_dump() for r in instrument(state).faults.rules]))


@router.delete("/faults/{fault_id}")
async def remove_fault(fault_id: str, state: AppState = Depends(require_admin)) -> Response:
    if not instrument(state).faults.remove(fault_id):
        raise not_found("Fault")
    return synced(state, Response(status_code=204))


@router.delete("/faults")
async def clear_faults(state: AppState = Depends(require_admin)) -> Response:
    instrument(state).faults.clear()
    return synced(state, Response(status_code=204))


@router.get("/requests")
async def list_requests(request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """The journal, filtered by ``component``, ``method``, ``path`` (regex), ``status``,
    ``correlation_id``, ``job_id``; ``limit`` keeps the newest N of the matches."""
    try:
        wanted = JournalFilter.from_query(request.query_params)
        limit = int(request.query_params.get("limit") or 0)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None
    matches = instrument(state).journal.query(wanted)
    shown = matches[-limit:] if limit > 0 else matches
    return {"count": len(matches), "requests": [e.as_json() for e in shown]}


@router.delete("/requests")
async def clear_requests(state: AppState = Depends(require_admin)) -> dict[str, str]:
    instrument(state).journal.clear()
    return {"message": "cleared"}


@router.get("/flows/{correlation_id}")
async def flow(correlation_id: str, request: Request, state: AppState = Depends(require_admin)) -> Response:
    """The Mermaid sequence diagram of one request; Workhorse adds its own entries in a header."""
    entries = instrument(state).journal.query(JournalFilter(correlation_id=correlation_id))
    entries += workhorse_entries(request.headers.get(WORKHORSE_JOURNAL_HEADER))
    if not entries:
        raise not_found("Flow")
    diagram = flows.render(entries)
    if request.query_params.get("format") == "json":
        return JSONResponse(
            {
                "correlation_id": correlation_id,
                "mermaid": diagram,
                "requests": [e.as_json() for e in sorted(entries, key=lambda e: e.started_at)],
            }
        )
    return PlainTextResponse(diagram)


class ClockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advance: str | None = None
    set: datetime | None = None
    reset: bool | None = None


@router.get("/clock")
async def get_clock(_state: AppState = Depends(require_admin)) -> dict[str, Any]:
    return clock_view()


@router.post("/clock")
async def change_clock(request: Request, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """``{"advance": "2 days"}``, ``{"set": "2026-01-01T00:00:00Z"}`` or ``{"reset": true}``."""
    try:
        change = ClockChange.model_validate(await request.json())
    except ValueError as exc:
        message = validation_message(exc) if isinstance(exc, ValidationError) else "body is not valid JSON"
        raise unprocessable(message) from None
    given = [k for k, v in change.model_dump().items() if v is not None]
    if len(given) != 1:
        raise unprocessable("give exactly one of advance, set, reset")
    if change.advance is not None:
        try:
            delta = timedelta(seconds=parse_duration(change.advance))
            past_limit = clock.now() + delta >= CLOCK_LIMIT
        except DurationParseError as exc:
            raise unprocessable(f"advance: {exc}") from None
        except OverflowError:  # a datetime ends with year 9999
            past_limit = True
        if past_limit:
            raise unprocessable(f"advance: the clock would pass the year {CLOCK_LIMIT.year}")
        await shared_state.change_clock(state, lambda: clock.advance(delta))
    elif change.set is not None:
        when = change.set if change.set.tzinfo else change.set.replace(tzinfo=UTC)
        if when >= CLOCK_LIMIT:
            raise unprocessable(f"set: the clock would pass the year {CLOCK_LIMIT.year}")
        newest = await newest_record(state)
        if newest is not None and when < newest:
            raise unprocessable(f"set: {when.isoformat()} is before the newest record ({newest.isoformat()})")
        await shared_state.change_clock(state, lambda: clock.set_to(when))
    else:
        await shared_state.change_clock(state, clock.reset)
    return clock_view()


def clock_view() -> dict[str, Any]:
    return {
        "now": clock.iso(clock.now()),
        "offset_seconds": clock.offset().total_seconds(),
        "real": clock.offset() == timedelta(0),
    }


async def newest_record(state: AppState) -> datetime | None:
    async with state.db.session() as session:
        times = [
            (await session.exec(select(func.max(model.created_at)))).one()  # type: ignore[attr-defined]
            for model in (Pipeline, Build, JobArtifact)
        ]
    present = [t for t in times if t is not None]
    return max(present) if present else None


@router.post("/jobs/{job_id}/start")
async def start_job(job_id: int, state: AppState = Depends(require_admin)) -> dict[str, Any]:
    """Put a job in ``running`` with a fresh token, as if a runner had picked it up."""
    async with state.db.session() as session:
        job = await session.get(Build, record_id(job_id))
        if job is None:
            raise not_found("Job")
        job.status = BuildStatus.running
        job.token = job.token or tokens.job_token()
        job.started_at = clock.now()
        job.finished_at = None
        session.add(job)
        await session.commit()
        return {"id": job.id, "token": job.token, "status": job.status, "project_id": job.project_id}


@router.get("/jobs/{job_id}/artifacts")
async def job_artifacts(job_id: int, state: AppState = Depends(require_admin)) -> list[dict[str, Any]]:
    """What Rails recorded for a job's artifacts, with the size and SHA-256 Workhorse measured
    while streaming: a load test checks an upload against what it sent (GitLab's API shows no hash)."""
    async with state.db.session() as session:
        if await session.get(Build, record_id(job_id)) is None:
            raise not_found("Job")
        rows = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == record_id(job_id)))).all()
    return [
        {
            "file_type": FileType(a.file_type).name,
            "file_format": FileFormat(a.file_format).name if a.file_format is not None else None,
            "size": a.size,
            "file_sha256": a.file_sha256,
        }
        for a in rows
    ]

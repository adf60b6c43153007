"""GitLab's probes: ``/-/health`` (process up) and ``/-/readiness`` (dependencies answer)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from app.state import AppState, get_state
from app.storage import StorageError

router = APIRouter(prefix="/-")


@router.get("/health")
async def health() -> PlainTextResponse:
    return PlainTextResponse("GitLab OK")


@router.get("/readiness")
async def readiness(state: AppState = Depends(get_state)) -> JSONResponse:
    checks: dict[str, list[dict[str, str]]] = {}
    try:
        await state.db.ping()
        checks["db_check"] = [{"status": "ok"}]
    except Exception as exc:  # noqa: BLE001 (any driver error means not ready)
        checks["db_check"] = [{"status": "failed", "message": str(exc)}]
    try:
        await state.store.head("-/readiness")
        checks["object_storage_check"] = [{"status": "ok"}]
    except StorageError as exc:
        checks["object_storage_check"] = [{"status": "failed", "message": str(exc)}]
    checks.update(state.instrument.readiness_checks())
    ok = all(c[0]["status"] == "ok" for c in checks.values())
    return JSONResponse({"status": "ok" if ok else "failed", **checks}, status_code=200 if ok else 503)

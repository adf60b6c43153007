"""The Rails application: ``create_app(settings)`` builds it, its lifespan opens what it needs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api import (
    git_http,
    health,
    job_actions,
    job_artifacts,
    mock,
    object_storage_door,
    pipelines,
    project_jobs,
    runner_artifacts,
    runner_jobs,
)
from app.config import Settings
from app.correlation import CorrelationIdMiddleware
from app.db import Database
from app.errors import APIError, api_error_handler, http_error_handler, validation_error_handler
from app.header_limits import HeaderLimitMiddleware
from app.journal import Journal
from app.journal_middleware import JournalMiddleware
from app.services import repositories
from app.services.bootstrap import bootstrap
from app.state import AppState
from app.storage import open_store
from app.storage.embedded_s3 import EmbeddedS3
from app.storage.faulty import FaultyStore
from app.storage.journaled import JournaledStore
from app.workhorse_api import ensure_secret
from mockctl.asgi import apply as apply_fault
from mockctl.faults import FaultRegistry

log = logging.getLogger("mockcoord.rails")


async def start(settings: Settings, journal: Journal, faults: FaultRegistry) -> AppState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = None
    if settings.embedded_s3:
        embedded = EmbeddedS3(
            settings.host if settings.binds_only_loopback() else "127.0.0.1", settings.s3_port
        ).start()
        settings.object_store.connection.endpoint = embedded.endpoint
    db = Database(settings.resolved_database_url)
    if stale := await db.stale_tables():
        if embedded is None:  # the rows may point at objects that still exist: never drop them unasked
            await db.dispose()
            where = make_url(settings.resolved_database_url).render_as_string()  # password hidden
            raise RuntimeError(
                f"the database {where} was made by an older mockcoord ({'; '.join(stale)} missing); "
                "give it an empty database, or drop its tables"
            )
        log.info("the database was made by an older mockcoord (%s): recreating its tables", "; ".join(stale))
        await db.drop_all()
    await db.create_all()
    raw_store = await open_store(settings)
    store = JournaledStore(FaultyStore(raw_store, faults), journal)
    settings.uploads_path.mkdir(parents=True, exist_ok=True)
    state = AppState(
        settings=settings,
        db=db,
        store=store,
        secret=ensure_secret(settings.secret_file),
        journal=journal,
        faults=faults,
        raw_store=raw_store,
        embedded_s3=embedded,
    )
    if embedded is not None:
        # moto keeps objects in memory: rows left from an earlier run would point at nothing.
        await db.truncate_all()
        await repositories.remove_all(settings)  # project ids start again: old repositories would be adopted
    async with db.session() as session:
        await bootstrap(session, settings.admin_token)
    return state


async def stop(state: AppState) -> None:
    await state.store.close()
    await state.db.dispose()
    if state.embedded_s3 is not None:
        state.embedded_s3.stop()


async def internal_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """GitLab's ``handle_api_exception``: log it, answer a bare JSON 500."""
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse({"message": "500 Internal Server Error"}, status_code=500)


class RailsApp(FastAPI):
    """FastAPI with ``rails`` fault rules applied first, where uvicorn's own ``send`` (and so
    the connection, for drops and resets) is still at hand."""

    faults: FaultRegistry

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def,override]
        if scope["type"] == "http" and not scope["path"].startswith("/-/"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            rule = self.faults.fire("rails", scope["method"], scope["path"], headers)
            if rule is not None:
                await apply_fault(rule, super().__call__, scope, receive, send)
                return
        elif scope["type"] == "http" and scope["path"].startswith(object_storage_door.PREFIX):
            key = unquote(scope["path"][len(object_storage_door.PREFIX) :])
            rule = self.faults.fire("storage", scope["method"], "/" + key, {})
            if rule is not None:  # the object store's own misbehaviour, down to the connection
                object_storage_door.record_fault(self.state.mockcoord, scope["method"], key, rule)
                await apply_fault(rule, super().__call__, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    journal = Journal(settings.journal_limit)
    faults = FaultRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await start(settings, journal, faults)
        app.state.mockcoord = state
        try:
            yield
        finally:
            await stop(state)

    app = RailsApp(
        title="mockcoord (Rails)",
        lifespan=lifespan,
        docs_url="/-/mock/docs",
        openapi_url="/-/mock/openapi.json",
        redoc_url=None,
    )
    app.faults = faults
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.router.routes.extend(runner_artifacts.routes)
    app.router.routes.extend(runner_jobs.routes)
    app.router.routes.extend(object_storage_door.routes)
    app.router.routes.extend(git_http.routes)
    app.router.routes.extend(pipelines.routes)
    app.router.routes.extend(project_jobs.routes)
    app.router.routes.extend(job_artifacts.routes)
    app.router.routes.extend(job_actions.routes)
    app.include_router(mock.router)
    app.include_router(health.router)
    app.add_middleware(JournalMiddleware, journal=journal)
    app.add_middleware(HeaderLimitMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    return app

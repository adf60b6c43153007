"""The Rails application: ``create_app(settings)`` builds it, its lifespan opens what it needs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api import (
    features,
    git_http,
    health,
    job_actions,
    job_artifacts,
    metrics,
    pipelines,
    project_jobs,
    projects,
    runner_artifacts,
    runner_jobs,
)
from app.config import Settings
from app.correlation import CorrelationIdMiddleware
from app.db import Database
from app.errors import APIError, api_error_handler, http_error_handler, validation_error_handler
from app.fixtures import bootstrap
from app.header_limits import HeaderLimitMiddleware
from app.instrumentation import Instrument
from app.lib import gitlab_version
from app.services.git import repositories
from app.state import AppState
from app.storage import open_store
from app.workhorse_api import ensure_secret

log = logging.getLogger("mockcoord.rails")


async def start(settings: Settings, instrument: Instrument) -> AppState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    gitlab_version.configure(settings.gitlab_version)
    await instrument.start(settings)
    db = Database(settings.resolved_database_url)
    if stale := await db.stale_tables():
        if not instrument.owns_data():  # the rows may point at objects that still exist: never drop them unasked
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
    settings.uploads_path.mkdir(parents=True, exist_ok=True)
    state = AppState(
        settings=settings,
        db=db,
        store=instrument.wrap_store(raw_store),
        secret=ensure_secret(settings.secret_file),
        raw_store=raw_store,
        instrument=instrument,
    )
    # Rows left from an earlier run would point at nothing when the instrument owns the data.
    async with db.emptied() if instrument.owns_data() else db.session() as session:
        await bootstrap(session, settings.admin_token)
    if instrument.owns_data():
        await repositories.remove_all(settings)  # project ids start again: old repositories would be adopted
    await instrument.started(state)
    return state


async def stop(state: AppState) -> None:
    await state.store.close()
    await state.db.dispose()
    await state.instrument.stop()


async def internal_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """GitLab's ``handle_api_exception``: log it, answer a bare JSON 500."""
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse({"message": "500 Internal Server Error"}, status_code=500)


def create_app(settings: Settings | None = None, instrument: Instrument | None = None) -> FastAPI:
    """Plain Rails unless an instrument is given (``mockctl.rails.create_app`` gives one)."""
    settings = settings or Settings()
    instrument = instrument or Instrument()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await start(settings, instrument)
        app.state.mockcoord = state
        try:
            yield
        finally:
            await stop(state)

    app = FastAPI(
        title="mockcoord (Rails)",
        lifespan=lifespan,
        docs_url="/-/mock/docs",
        openapi_url="/-/mock/openapi.json",
        redoc_url=None,
    )
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.router.routes.extend(runner_artifacts.routes)
    app.router.routes.extend(runner_jobs.routes)
    app.router.routes.extend(git_http.routes)
    app.router.routes.extend(pipelines.routes)
    app.router.routes.extend(project_jobs.routes)
    app.router.routes.extend(job_artifacts.routes)
    app.router.routes.extend(job_actions.routes)
    app.router.routes.extend(projects.routes)
    app.router.routes.extend(features.routes)
    app.include_router(health.router)
    app.include_router(metrics.router)
    instrument.install(app)
    app.add_middleware(HeaderLimitMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    return app

"""Rails as mockcoord runs it: GitLab's Rails (``app``) with the instrument plugged in.

Everything here reaches Rails through ``app.instrumentation`` only: the request journal
and its middleware, fault rules (``rails`` at the door, ``storage`` on Rails' own store
calls and on the object-storage door), the embedded S3 server, and the ``/-/mock/*``
routes. ``mockcoord serve`` and ``mockcoord rails`` build this app; ``app.main.create_app``
alone is plain Rails.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.main import create_app as create_rails
from mockctl import shared_state
from mockctl.api import ci_config, features, housekeeping, mock, object_storage_door, workers
from mockctl.asgi import apply as apply_fault
from mockctl.instrument import DOOR_PREFIX, RailsInstrument


class FaultMiddleware:
    """``rails`` fault rules first, where uvicorn's own ``send`` (and so the connection, for
    drops and resets) is still at hand; ``storage`` rules on the object-storage door."""

    def __init__(self, app: ASGIApp, instrument: RailsInstrument) -> None:
        self.app = app
        self.faults = instrument.faults
        self.journal = instrument.journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/-/"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            rule = self.faults.fire("rails", scope["method"], scope["path"], headers)
            if rule is not None:
                await apply_fault(rule, self.app, scope, receive, send)
                return
        elif scope["type"] == "http" and scope["path"].startswith(DOOR_PREFIX):
            key = unquote(scope["path"][len(DOOR_PREFIX) :])
            rule = self.faults.fire("storage", scope["method"], "/" + key, {})
            if rule is not None:  # the object store's own misbehaviour, down to the connection
                object_storage_door.record_fault(self.journal, scope["method"], key, rule)
                await apply_fault(rule, self.app, scope, receive, send)
                return
        await self.app(scope, receive, send)


class SharedStateMiddleware:
    """Several Rails processes: the clock or release a sibling's control plane moved, in force
    here before the next request (``shared_state.Watch``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.watch = shared_state.Watch(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.watch.catch_up(scope["app"].state.mockcoord)
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    rails_instrument = RailsInstrument(settings)
    app = create_rails(settings, rails_instrument)
    app.router.routes.extend(object_storage_door.routes)
    app.router.routes.extend(ci_config.routes)
    app.include_router(mock.router)
    app.include_router(workers.router)
    app.include_router(housekeeping.router)
    app.include_router(features.router)
    if settings.rails_processes > 1:
        app.add_middleware(SharedStateMiddleware, settings=settings)
    app.add_middleware(FaultMiddleware, instrument=rails_instrument)  # outermost: before any other middleware
    return app

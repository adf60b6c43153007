"""The instrument one Rails process carries: request journal, fault rules, embedded S3.

It reaches Rails only through ``app.instrumentation`` (``mockctl.rails`` plugs it in); the
control plane's routes find it with ``instrument(state)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import cast
from urllib.parse import quote

import jwt
from fastapi import FastAPI, Request

from app import clock
from app.config import Settings
from app.instrumentation import Instrument
from app.state import AppState
from app.storage import ArtifactStore
from app.workhorse_api import ensure_secret
from mockctl.embedded_s3 import EmbeddedS3, embedded_s3_host
from mockctl.faults import FaultRegistry
from mockctl.journal import Journal
from mockctl.journal_middleware import JournalMiddleware
from mockctl.shared_faults import SharedFaultRegistry, rails_faults_file
from mockctl.storage_faults import FaultyStore
from mockctl.storage_journal import JournaledStore

DOOR_PREFIX = "/-/mock/object-storage/"  # mockctl.api.object_storage_door serves it


class RailsInstrument(Instrument):
    def __init__(self, settings: Settings) -> None:
        self.journal = Journal(settings.journal_limit)
        shared = rails_faults_file(settings)
        self.faults = FaultRegistry() if shared is None else SharedFaultRegistry(shared)
        self.embedded_s3: EmbeddedS3 | None = None
        self.settings = settings
        self.secret = b""  # the Workhorse secret signs the door's URLs, as the store's key signs its own
        self.readiness: dict[str, Callable[[], dict[str, str]]] = {}  # mockctl.stack adds workhorse_check

    def install(self, app: FastAPI) -> None:
        app.add_middleware(JournalMiddleware, journal=self.journal)

    async def start(self, settings: Settings) -> None:
        self.secret = ensure_secret(settings.secret_file)
        if settings.embedded_s3:
            self.embedded_s3 = EmbeddedS3(
                embedded_s3_host(settings), settings.s3_port, settings.object_store.connection
            ).start()
            settings.object_store.connection.endpoint = self.embedded_s3.endpoint

    def owns_data(self) -> bool:
        return self.embedded_s3 is not None  # moto keeps objects in memory: they go with it

    async def started(self, state: AppState) -> None:
        """The clock and release the control plane last set, in whichever process; with an
        in-memory store the instance starts empty, so they start afresh too."""
        from mockctl import shared_state

        if self.owns_data():
            await shared_state.forget(state)
        else:
            await shared_state.load(state)

    def wrap_store(self, store: ArtifactStore) -> ArtifactStore:
        return JournaledStore(FaultyStore(store, self.faults), self.journal)

    async def stop(self) -> None:
        if self.embedded_s3 is not None:
            self.embedded_s3.stop()

    def direct_download_url(self, request: Request, method: str, key: str, expires_in: int) -> str | None:
        """The object-storage door, only while a ``storage`` rule could match the object or the
        clock is moved: otherwise the real presigned URL is faithful and faster."""
        if clock.offset() == timedelta(0) and not any(
            rule.matches(method, "/" + key, {}) for rule in self.faults.of("storage")
        ):
            return None
        # On Rails' own socket (``scope["server"]``), not the front door: the runner talks to
        # object storage directly, Workhorse plays no part in a direct download.
        host, port = request.scope.get("server") or (self.settings.host, self.settings.rails_port)
        expires = clock.now() + timedelta(seconds=expires_in)
        token = jwt.encode({"key": key, "exp_at": expires.timestamp()}, self.secret, algorithm="HS256")
        return f"http://{host}:{port}{DOOR_PREFIX}{quote(key)}?token={token}"

    def readiness_checks(self) -> dict[str, list[dict[str, str]]]:
        return {name: [check()] for name, check in self.readiness.items()}


def instrument(state: AppState) -> RailsInstrument:
    """The instrument of a Rails that ``mockctl.rails.create_app`` built."""
    return cast(RailsInstrument, state.instrument)

"""What one Rails process holds for its lifetime: settings, database, store, Workhorse secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from app.config import Settings
from app.db import Database
from app.instrumentation import Instrument
from app.storage import ArtifactStore


@dataclass
class AppState:
    settings: Settings
    db: Database
    store: ArtifactStore  # as the instrument wrapped it
    secret: bytes
    raw_store: ArtifactStore  # the store itself, as no instrument sees it
    instrument: Instrument = field(default_factory=Instrument)


def get_state(request: Request) -> AppState:
    return request.app.state.mockcoord

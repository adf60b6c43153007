"""What one Rails process holds for its lifetime: settings, database, store, Workhorse secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from app.config import Settings
from app.db import Database
from app.journal import Journal
from app.storage import ArtifactStore
from app.storage.embedded_s3 import EmbeddedS3
from mockctl.faults import FaultRegistry


@dataclass
class AppState:
    settings: Settings
    db: Database
    store: ArtifactStore
    secret: bytes
    journal: Journal
    faults: FaultRegistry
    raw_store: ArtifactStore  # the store itself, unjournaled and unfaulted (the object-storage door)
    embedded_s3: EmbeddedS3 | None = field(default=None)


def get_state(request: Request) -> AppState:
    return request.app.state.mockcoord

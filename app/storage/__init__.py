"""Artifact storage: pick the store the settings describe."""

from __future__ import annotations

from app.config import Settings
from app.storage.base import ArtifactStore, IncompleteUpload, ObjectInfo, StorageError
from app.storage.local import LocalStore
from app.storage.s3 import S3Store

__all__ = [
    "ArtifactStore",
    "IncompleteUpload",
    "LocalStore",
    "ObjectInfo",
    "S3Store",
    "StorageError",
    "open_store",
]


async def open_store(settings: Settings) -> ArtifactStore:
    if not settings.object_store.enabled:
        return LocalStore(settings.artifacts_path)
    store = await S3Store(settings.object_store).open()
    await store.ensure_bucket()
    return store

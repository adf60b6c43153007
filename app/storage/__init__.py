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
    "delete_all",
    "open_store",
]


async def open_store(settings: Settings) -> ArtifactStore:
    if not settings.object_store.enabled:
        return LocalStore(settings.artifacts_path)
    store = await S3Store(settings.object_store).open()
    await store.ensure_bucket()
    return store


async def delete_all(store: ArtifactStore, keys: list[str]) -> list[str]:
    """Best-effort removal of objects written by a step that is being undone; returns
    the keys that could not be deleted (what the orphan scans will later find)."""
    failed = []
    for key in keys:
        try:
            await store.delete(key)
        except StorageError:
            failed.append(key)
    return failed

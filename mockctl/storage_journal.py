"""An ``ArtifactStore`` that records each object-storage call in the journal."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from app.instrumentation import note_step
from app.storage.base import ArtifactStore, ObjectInfo, StorageError
from mockctl.journal import STORAGE_STEP, Journal, JournalEntry


class JournaledStore:
    def __init__(self, inner: ArtifactStore, journal: Journal) -> None:
        self.inner = inner
        self.journal = journal
        self.remote = inner.remote

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)  # path(), bucket, ... of the concrete store

    def _record(
        self, method: str, key: str, started: float, status: int, bytes_in: int = 0, bytes_out: int = 0, note: str = ""
    ) -> None:
        note_step(f"{STORAGE_STEP}{method} {key} {status}")
        self.journal.record(
            JournalEntry(
                component="storage",
                via="rails",
                method=method,
                path=key,
                status=status,
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                note=note,
            )
        )

    async def put_file(self, key: str, source: Path) -> None:
        started, size = time.perf_counter(), await asyncio.to_thread(os.path.getsize, source)
        try:
            await self.inner.put_file(key, source)
        except StorageError as exc:
            self._record("PUT", key, started, 500, note=str(exc))
            raise
        self._record("PUT", key, started, 200, bytes_in=size)

    async def put_bytes(self, key: str, data: bytes) -> None:
        started = time.perf_counter()
        try:
            await self.inner.put_bytes(key, data)
        except StorageError as exc:
            self._record("PUT", key, started, 500, note=str(exc))
            raise
        self._record("PUT", key, started, 200, bytes_in=len(data))

    async def head(self, key: str) -> ObjectInfo | None:
        started = time.perf_counter()
        try:
            info = await self.inner.head(key)
        except StorageError as exc:
            self._record("HEAD", key, started, 500, note=str(exc))
            raise
        self._record("HEAD", key, started, 200 if info else 404)
        return info

    async def delete(self, key: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.delete(key)
        except StorageError as exc:
            self._record("DELETE", key, started, 500, note=str(exc))
            raise
        self._record("DELETE", key, started, 204)

    async def delete_many(self, keys: list[str]) -> list[str]:
        started = time.perf_counter()
        failed = await self.inner.delete_many(keys)
        # S3's DeleteObjects is ``POST /<bucket>?delete``
        self._record("POST", "?delete", started, 200, note=f"{len(keys)} keys, {len(failed)} failed")
        return failed

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        started, sent, status = time.perf_counter(), 0, 200
        try:
            async for chunk in self.inner.iter_range(key, start, end):
                sent += len(chunk)
                yield chunk
        except StorageError:
            status = 500
            raise
        finally:
            self._record("GET", key, started, status, bytes_out=sent)

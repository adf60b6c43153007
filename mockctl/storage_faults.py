"""Storage faults on Rails' own object-storage calls (component ``storage``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from app.storage.base import ArtifactStore, ObjectInfo, StorageError
from mockctl.faults import FaultRegistry, InjectedCut, storage_fault


class FaultyStore:
    def __init__(self, inner: ArtifactStore, faults: FaultRegistry) -> None:
        self.inner = inner
        self.faults = faults
        self.remote = inner.remote

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    async def _check(self, method: str, key: str) -> bool:
        """True when the store should seem to answer 404; raises what a broken store would."""
        try:
            rule = await storage_fault(self.faults, method, "/" + key)
        except InjectedCut as exc:
            raise StorageError(str(exc)) from None
        if rule is None or rule.status is None or rule.status < 400:
            return False
        if rule.status == 404:
            return True
        raise StorageError(f"{method} {key}: {rule.error or rule.status} (injected fault)")

    async def put_file(self, key: str, source: Path) -> None:
        if await self._check("PUT", key):
            raise StorageError(f"PUT {key}: 404 NoSuchBucket (injected)")
        await self.inner.put_file(key, source)

    async def put_bytes(self, key: str, data: bytes) -> None:
        if await self._check("PUT", key):
            raise StorageError(f"PUT {key}: 404 NoSuchBucket (injected)")
        await self.inner.put_bytes(key, data)

    async def head(self, key: str) -> ObjectInfo | None:
        if await self._check("HEAD", key):
            return None
        return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        if not await self._check("DELETE", key):
            await self.inner.delete(key)

    async def delete_many(self, keys: list[str]) -> list[str]:
        """A fault on ``DELETE`` fails the keys it matches; the others go to the store."""
        failed, passed = [], []
        for key in keys:
            try:
                if not await self._check("DELETE", key):
                    passed.append(key)
            except StorageError:
                failed.append(key)
        return failed + (await self.inner.delete_many(passed) if passed else [])

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if await self._check("GET", key):
            raise StorageError(f"GET {key}: 404 NoSuchKey (injected)")
        async for chunk in self.inner.iter_range(key, start, end):
            yield chunk

    async def list(self, prefix: str = "", marker: str = "", max_keys: int = 200) -> AsyncIterator[list[ObjectInfo]]:
        await self._check("LIST", prefix)
        async for page in self.inner.list(prefix, marker, max_keys):
            yield page

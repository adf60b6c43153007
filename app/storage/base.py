"""One async interface over GitLab's two artifact stores: local disk and object storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The store failed (unreachable, refused); callers answer 5xx and record nothing."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class ArtifactStore(Protocol):
    """Keys are relative to the artifacts root (local) or the bucket prefix (S3)."""

    remote: bool

    async def put_file(self, key: str, source: Path) -> None: ...

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None: ...

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...

    def list(self, prefix: str = "", marker: str = "", max_keys: int = 200) -> AsyncIterator[list[ObjectInfo]]: ...

    async def presigned_url(self, method: str, key: str, expires_in: int) -> str: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...

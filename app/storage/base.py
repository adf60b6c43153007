"""One async interface over GitLab's two artifact stores: local disk and object storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The store failed (unreachable, refused); callers answer 5xx and record nothing."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True)
class IncompleteUpload:
    """An upload begun and never finished: an S3 multipart upload, a local temp file."""

    key: str  # object storage: as a pending direct upload names it (without the bucket prefix)
    initiated: datetime
    upload_id: str = ""


class ArtifactStore(Protocol):
    """Keys are relative to the artifacts root (local) or the bucket prefix (S3)."""

    remote: bool

    async def put_file(self, key: str, source: Path) -> None: ...

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_many(self, keys: list[str]) -> list[str]:
        """Removes the objects (a missing one counts as removed); answers the keys it could not
        remove. Object storage does it in bulk (S3 ``DeleteObjects``, 1,000 keys a request)."""
        ...

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...

    def list(self, prefix: str = "", marker: str = "", max_keys: int = 200) -> AsyncIterator[list[ObjectInfo]]: ...

    async def presigned_url(self, method: str, key: str, expires_in: int) -> str: ...

    def incomplete_uploads(self) -> AsyncIterator[list[IncompleteUpload]]:
        """Pages of uploads nobody finished; no object listing shows them."""
        ...

    async def abort_upload(self, upload: IncompleteUpload) -> None: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...

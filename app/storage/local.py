"""GitLab "local storage": files under ``shared/artifacts`` in the hashed layout."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from app.storage.base import IncompleteUpload, ObjectInfo

CHUNK = 1024 * 1024


class LocalStore:
    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "tmp" / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if not resolved.is_relative_to(self.root):
            raise ValueError(f"key escapes the artifacts root: {key!r}")
        return resolved

    async def put_file(self, key: str, source: Path) -> None:
        """Move (same filesystem) or copy the uploaded file into place, never buffering it."""
        await asyncio.to_thread(_move, source, self.path(key))

    async def put_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(_write, self.path(key), data)

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            st = await asyncio.to_thread(os.stat, self.path(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(_unlink_and_prune, self.path(key), self.root)

    async def delete_many(self, keys: list[str]) -> list[str]:
        """The keys that could not be removed; one thread hop for the batch (a hop a key cost
        more than the removals: ``Ci::DeleteObjectsWorker`` sends batches of 100)."""
        return await asyncio.to_thread(self._delete_all, keys)

    def _delete_all(self, keys: list[str]) -> list[str]:
        failed = []
        for key in keys:
            if not os.path.lexists(self.root / key):
                continue  # already gone: removed, as S3's DeleteObjects answers it
            try:
                _unlink_and_prune(self.path(key), self.root)
            except OSError:
                failed.append(key)
        return failed

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        with open(self.path(key), "rb") as fh:  # noqa: ASYNC230 (reads happen in a thread below)
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = CHUNK if remaining is None else min(CHUNK, remaining)
                chunk = await asyncio.to_thread(fh.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def list(self, prefix: str = "", marker: str = "", max_keys: int = 200) -> AsyncIterator[list[ObjectInfo]]:
        keys = await asyncio.to_thread(_walk, self.root, prefix, marker)
        for i in range(0, len(keys), max_keys):
            yield keys[i : i + max_keys]

    async def presigned_url(self, method: str, key: str, expires_in: int) -> str:
        raise NotImplementedError("local storage has no URLs; Rails answers X-Sendfile instead")

    async def incomplete_uploads(self) -> AsyncIterator[list[IncompleteUpload]]:
        """No multipart uploads here: an interrupted upload leaves Workhorse's temp file in
        ``tmp/uploads``, which no finalize moved into place."""
        found = await asyncio.to_thread(_temp_files, self.uploads)
        for i in range(0, len(found), 1000):
            yield found[i : i + 1000]

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        await asyncio.to_thread((self.uploads / upload.key).unlink, missing_ok=True)

    async def clear(self) -> None:
        await asyncio.to_thread(_clear, self.root)
        self.uploads.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(os.fspath(source), os.fspath(target))


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _unlink_and_prune(target: Path, root: Path) -> None:
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def _walk(root: Path, prefix: str, marker: str) -> list[ObjectInfo]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            key = full.relative_to(root).as_posix()
            if key.startswith("tmp/") or not key.startswith(prefix) or key <= marker:
                continue
            found.append(ObjectInfo(key, full.stat().st_size))
    return sorted(found, key=lambda o: o.key)


def _temp_files(uploads: Path) -> list[IncompleteUpload]:
    found = []
    for dirpath, _dirs, files in os.walk(uploads):
        for name in files:
            path = Path(dirpath) / name
            try:
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except FileNotFoundError:
                continue  # finalized (moved into place) meanwhile
            found.append(IncompleteUpload(path.relative_to(uploads).as_posix(), modified))
    return found


def _clear(root: Path) -> None:
    if not root.exists():
        return
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()

"""``artifacts-entry:``: one file out of a job's zip archive (``internal/artifacts/entry.go``).

Rails names the archive (a local path, or a presigned URL on object storage) and the entry
(base64). The archive is never fetched whole: Python's ``zipfile`` reads it through
``RangedFile``, which turns its seeks and reads into ranged GETs on the URL (the
``RemoteSource`` the metadata builder uses) a window at a time, and the entry is
decompressed and sent a chunk at a time from a worker thread. Memory stays at about two
chunks whatever the archive or entry size; the central directory is refused past the same
limit as for metadata.

Answers as GitLab's: 404 ``404 page not found`` when the archive or the entry is missing,
500 for anything else before the first byte; ``Content-Length`` (the entry's size),
``Content-Type`` by extension and ``Content-Disposition: attachment; filename="<base name>"``
on top of Rails' headers. No ranges. With ``detect_content_type`` the type comes from the
first bytes instead (``safe_content_headers``).
"""

import asyncio
import base64
import binascii
import os
import posixpath
import time
import zipfile
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from workhorse.content_headers import MAX_DETECT_SIZE, safe_content_headers, type_by_extension
from workhorse.httpio import Headers, Request, fail, start
from workhorse.senddata import record_fetch
from workhorse.senddata.send_url import decode
from workhorse.upload.destination import StorageError, injected_storage_status
from workhorse.upload.metadata import (
    ArchiveNotFound,
    LocalSource,
    MetadataTooLarge,
    NotZip,
    RemoteSource,
    directory_bounds,
)
from workhorse.upstream import State

PREFIX = "artifacts-entry:"
REPLACED = frozenset({"content-length", "content-type", "content-disposition"})
_CONTENT_RANGE_TOTAL = "/"


class NotFound(Exception):
    """The archive or the entry is not there (gitlab-zip-cat's exit codes 11 and 12)."""


class RangedFile:
    """A read-only, seekable file over ranged reads, for ``zipfile`` running in a worker
    thread; each read the window does not cover fetches the next ``window`` bytes on the
    event loop (near the end, the last ``window`` bytes, so the end-of-directory records
    and usually the directory itself come in one request)."""

    def __init__(self, source: RemoteSource, size: int, loop: asyncio.AbstractEventLoop, window: int) -> None:
        self._source, self._size, self._loop, self._window = source, size, loop, window
        self._pos = 0
        self._start, self._data = 0, b""

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n is None or n < 0 else min(n, self._size - self._pos)
        if n <= 0:
            return b""
        end = self._pos + n
        if not (self._start <= self._pos and end <= self._start + len(self._data)):
            start = self._pos if end + self._window <= self._size else max(self._size - max(self._window, n), 0)
            start = min(start, self._pos)
            length = min(max(self._window, end - start), self._size - start)
            future = asyncio.run_coroutine_threadsafe(self._source.read_at(start, length), self._loop)
            self._start, self._data = start, future.result()
        data = self._data[self._pos - self._start : end - self._start]
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._data = b""


def decode_entry(encoded: str) -> bytes:
    """``DecodeFileEntry``: standard base64; newlines (Ruby's ``encode64``) are ignored."""
    return base64.b64decode("".join(encoded.split()), validate=True)


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored (Go compares these; Python decodes non-UTF-8 names as cp437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


async def _remote_size(state: State, url: str) -> int:
    """The object's length from a one-byte ranged GET (a presigned GET URL cannot be HEADed)."""
    async with state.storage.get(url, headers={"Range": "bytes=0-0"}) as response:
        if response.status == 404:
            raise NotFound("archive not found")
        if response.status == 416:
            return 0
        if response.status == 200:
            return int(response.headers.get("Content-Length", "0"))
        if response.status != 206:
            raise StorageError(f"HTTP GET {urlsplit(url).path}: {response.status}")
        return int(response.headers.get("Content-Range", "/0").rsplit(_CONTENT_RANGE_TOTAL, 1)[1])


async def _open_archive(state: State, archive: str) -> zipfile.ZipFile:
    """The archive as a ``ZipFile``; its central directory checked against the limit first."""
    remote = urlsplit(archive).scheme in ("http", "https")
    if remote:
        injected = await injected_storage_status(state, "GET", urlsplit(archive).path)
        if injected == 404:
            raise NotFound("archive not found")
        if injected is not None and injected >= 400:
            raise StorageError(f"injected object storage answer {injected}")
        size = await _remote_size(state, archive)
        source: Any = RemoteSource(state, archive)
    else:
        try:
            size = await asyncio.to_thread(os.path.getsize, archive)
        except OSError:
            raise NotFound("archive not found") from None
        source = LocalSource(state, archive)
    if size < 22:
        raise NotZip("too small")
    await directory_bounds(source, size)
    if not remote:
        return await asyncio.to_thread(zipfile.ZipFile, archive)
    ranged = RangedFile(source, size, asyncio.get_running_loop(), state.settings.chunk_size)
    return await asyncio.to_thread(zipfile.ZipFile, ranged)  # type: ignore[arg-type]


def _headers(rails_headers: Headers, info: zipfile.ZipInfo, name: bytes) -> Headers:
    basename = posixpath.basename(name.rstrip(b"/")) or b"."
    quoted = basename.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return [
        *((k, v) for k, v in rails_headers if k.lower() not in REPLACED),
        ("Content-Length", str(info.file_size)),
        ("Content-Type", type_by_extension(name.decode("utf-8", "replace"))),
        # Go writes the name's bytes as they are; ASGI takes header values as latin-1.
        ("Content-Disposition", f'attachment; filename="{quoted.decode("latin-1")}"'),
    ]


def _detected(headers: Headers, first: bytes) -> Headers:
    """``contentprocessor``: with bytes to look at, sniffed type and safe disposition win."""
    if not first:
        return headers
    disposition = next((v for k, v in headers if k.lower() == "content-disposition"), "")
    content_type, disposition = safe_content_headers(first[:MAX_DETECT_SIZE], disposition)
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-disposition")]
    return [*kept, ("Content-Type", content_type), ("Content-Disposition", disposition)]


async def serve(state: State, req: Request, rails_headers: Headers, encoded: str, detect_content_type: bool) -> None:
    try:
        params = decode(encoded)
        archive, entry = str(params.get("Archive") or ""), str(params.get("Entry") or "")
    except (ValueError, TypeError, AttributeError) as exc:
        state.log.error("SendEntry: unpack sendData", exc)
        await fail(req.send, 500, "Internal Server Error")
        return
    state.log.info("SendEntry: sending", entry=entry, archive=archive.split("?")[0], path=req.path)
    if not archive or not entry:
        state.log.error("", "SendEntry: Archive or Entry is empty")
        await fail(req.send, 500, "Internal Server Error")
        return
    started, outcome = time.time(), {"status": 500, "bytes": 0}
    try:
        await _send(state, req, rails_headers, archive, entry, detect_content_type, outcome)
    finally:
        if urlsplit(archive).scheme in ("http", "https"):
            record_fetch(state, req, "GET", archive, started, outcome, "artifacts-entry")


async def _send(
    state: State,
    req: Request,
    rails_headers: Headers,
    archive: str,
    entry: str,
    detect_content_type: bool,
    outcome: dict[str, int],
) -> None:
    zf: zipfile.ZipFile | None = None
    stream: zipfile.ZipExtFile | None = None
    try:
        try:
            name = decode_entry(entry)
            zf = await _open_archive(state, archive)
            info = next((i for i in zf.infolist() if _raw_name(i) == name), None)
            if info is None:
                raise NotFound("entry not found")
            stream = await asyncio.to_thread(zf.open, info)
            first = await asyncio.to_thread(stream.read, state.settings.chunk_size)
        except (NotFound, ArchiveNotFound) as exc:
            state.log.error("SendEntry", exc)
            outcome["status"] = 404
            await fail(req.send, 404, "404 page not found")
            return
        except (
            binascii.Error,
            NotZip,
            MetadataTooLarge,
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            StorageError,
            OSError,
            aiohttp.ClientError,
            EOFError,
        ) as exc:
            state.log.error("", f"SendEntry: {exc}")
            await fail(req.send, 500, "Internal Server Error")
            return
        headers = _headers(rails_headers, info, name)
        if detect_content_type:
            headers = _detected(headers, first)
        outcome["status"] = 200
        await start(req.send, 200, headers)
        if req.method != "HEAD":
            chunk = first
            while chunk:
                outcome["bytes"] += len(chunk)
                await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await asyncio.to_thread(stream.read, state.settings.chunk_size)
        await req.send({"type": "http.response.body", "body": b""})
    finally:
        if stream is not None:
            await asyncio.to_thread(stream.close)
        if zf is not None:
            await asyncio.to_thread(zf.close)

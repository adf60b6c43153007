"""GitLab's artifacts metadata (``metadata.gz``), built from a zip's central directory.

Only the end of the archive is read, with ranged reads (HTTP Range on GetURL, or seeks on
the local file), so the archive is never held in memory. A read that fails is a ReadError,
never "not a zip": an archive the store could not hand back is not thereby a bare upload. The output format follows
workhorse/internal/zipartifacts: a gzip stream of uint32 big-endian length-prefixed strings.
"""

import asyncio
import datetime
import gzip
import json
import os
import posixpath
import struct
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from workhorse.upload.destination import StorageError, injected_storage_status
from workhorse.upstream import State

HEADER = b"GitLab Build Artifacts Metadata 0.0.2\n"
CENTRAL_DIRECTORY_LIMIT = 100 * 1024 * 1024  # gitlab-zip-metadata's -zip-reader-limit

_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_CDH = struct.Struct("<4sHHHHHHIIIHHHHHII")
_UNIX_CREATORS = {3, 19}  # unix, macOS
_MSDOS_CREATORS = {0, 11, 14}  # FAT, NTFS, VFAT


class NotZip(Exception):
    """Not a readable zip: GitLab then sends no metadata at all (exit code 10)."""


class MetadataTooLarge(Exception):
    """The central directory is beyond the reader limit (exit code 13: 413)."""


class ArchiveNotFound(Exception):
    """The store says the archive is not there (exit code 12): Workhorse goes on without
    metadata, and Rails, looking for the file, answers that it is missing."""


class ReadError(OSError):
    """The archive could not be read (the store answered an error, a cut or short read): unlike
    NotZip this says nothing about the archive, so the upload fails instead of going on bare."""


class RangeSource(Protocol):
    async def read_at(self, offset: int, length: int) -> bytes: ...


async def _storage_fault(state: State, path: str, operation: str = "") -> None:
    """A ``storage`` fault rule on this read, as the read's own failure."""
    try:
        status = await injected_storage_status(state, "GET", path, operation)
    except StorageError as exc:
        raise ReadError(str(exc)) from exc
    if status == 404:
        raise ArchiveNotFound(path)
    if status is not None and status >= 400:
        raise ReadError(f"HTTP GET {path}: {status}")


def _exactly(data: bytes, length: int, where: str) -> bytes:
    if len(data) != length:
        raise ReadError(f"{where}: short read, {len(data)} of {length} bytes")
    return data


class LocalSource:
    """Ranged reads of a local file, off the event loop."""

    def __init__(self, state: State, path: str) -> None:
        self._state = state
        self._path = path

    def _pread(self, offset: int, length: int) -> bytes:
        try:
            with open(self._path, "rb") as file:
                return os.pread(file.fileno(), length, offset)
        except FileNotFoundError:
            raise ArchiveNotFound(self._path) from None

    async def read_at(self, offset: int, length: int) -> bytes:
        await _storage_fault(self._state, self._path, operation="read")
        return _exactly(await asyncio.to_thread(self._pread, offset, length), length, f"read {self._path}")


class RemoteSource:
    """Ranged GETs on the object's presigned GetURL."""

    def __init__(self, state: State, url: str) -> None:
        self._state = state
        self._url = url
        self._path = urlsplit(url).path

    async def read_at(self, offset: int, length: int) -> bytes:
        await _storage_fault(self._state, self._path)
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            async with self._state.storage.get(self._url, headers=headers) as response:
                if response.status == 404:
                    raise ArchiveNotFound(self._path)
                if response.status != 206:
                    raise ReadError(f"HTTP GET {self._path}: {response.status}")
                return _exactly(await response.read(), length, f"HTTP GET {self._path}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ReadError(f"HTTP GET {self._path}: {exc}") from exc


def _find_eocd(tail: bytes) -> int:
    """Offset of the end-of-central-directory record whose comment fits in ``tail``, or -1."""
    i = len(tail) - _EOCD.size
    while i >= 0:
        i = tail.rfind(b"PK\x05\x06", 0, i + 4)
        if i < 0:
            return -1
        comment_length = int.from_bytes(tail[i + 20 : i + 22], "little")
        if i + _EOCD.size + comment_length <= len(tail):
            return i
        i -= 1
    return -1


async def directory_bounds(source: RangeSource, size: int) -> tuple[int, int, int]:
    """(entries, directory offset, directory size), zip64 aware."""
    tail_length = min(size, _EOCD.size + 0xFFFF)
    tail = await source.read_at(size - tail_length, tail_length)
    at = _find_eocd(tail)
    if at < 0:
        raise NotZip("no end of central directory")
    _sig, _disk, _cd_disk, _here, entries, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, at)
    if 0xFFFF in (entries,) or 0xFFFFFFFF in (cd_size, cd_offset):
        locator_at = size - tail_length + at - _ZIP64_LOCATOR.size
        if locator_at >= 0:
            sig, _, eocd64_at, _ = _ZIP64_LOCATOR.unpack(await source.read_at(locator_at, _ZIP64_LOCATOR.size))
            if sig == b"PK\x06\x07" and eocd64_at + _ZIP64_EOCD.size <= size:
                record = _ZIP64_EOCD.unpack(await source.read_at(eocd64_at, _ZIP64_EOCD.size))
                if record[0] == b"PK\x06\x06":
                    entries, cd_size, cd_offset = record[7], record[8], record[9]
    if cd_offset + cd_size > size:
        raise NotZip("central directory beyond the end of the file")
    if cd_size > CENTRAL_DIRECTORY_LIMIT:
        raise MetadataTooLarge(f"central directory of {cd_size} bytes")
    return entries, cd_offset, cd_size


def _go_mode(version_made_by: int, external: int, name: bytes) -> str:
    """Octal permission bits as Go's zip FileHeader.Mode().Perm() gives them."""
    creator = version_made_by >> 8
    if creator in _UNIX_CREATORS:
        perm = (external >> 16) & 0o777
    elif creator in _MSDOS_CREATORS:
        perm = 0o777 if external & 0x10 else 0o666
        if external & 0x01:
            perm &= ~0o222
    else:
        perm = 0
    return format(perm, "o")


def _dos_time(date: int, time: int) -> int:
    """Unix time of an MS-DOS date/time read as UTC, normalised the way Go's time.Date does."""
    year, month, day = (date >> 9) + 1980, (date >> 5) & 0xF, date & 0x1F
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    days = datetime.date(year, month, 1).toordinal() - datetime.date(1970, 1, 1).toordinal() + day - 1
    return days * 86400 + (time >> 11) * 3600 + ((time >> 5) & 0x3F) * 60 + (time & 0x1F) * 2


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            fields = iter(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if usize == 0xFFFFFFFF:
                usize = next(fields, usize)
            if csize == 0xFFFFFFFF:
                csize = next(fields, csize)
            break
        pos += 4 + length
    return usize, csize


def _entry_json(values: dict[str, object]) -> bytes:
    """Go's json.Marshal of the metadata struct: omitempty, HTML-safe escapes, then a newline."""
    kept = {k: v for k, v in values.items() if v}
    text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode() + b"\n"


def _parse_directory(data: bytes, entries: int) -> dict[bytes, bytes]:
    """Path -> encoded metadata line, for every central directory record."""
    found: dict[bytes, bytes] = {}
    pos = count = 0
    while pos + _CDH.size <= len(data) and data[pos : pos + 4] == b"PK\x01\x02":
        (_, made_by, _, _, _, mtime, mdate, crc, csize, usize, name_len, extra_len, comment_len, _, _, external, _) = (
            _CDH.unpack_from(data, pos)
        )
        start = pos + _CDH.size
        name = data[start : start + name_len]
        extra = data[start + name_len : start + name_len + extra_len]
        comment = data[start + name_len + extra_len : start + name_len + extra_len + comment_len]
        pos = start + name_len + extra_len + comment_len
        if pos > len(data):
            break
        usize, csize = _zip64_sizes(extra, usize, csize)
        found[name] = _entry_json(
            {
                "modified": _dos_time(mdate, mtime),
                "mode": _go_mode(made_by, external, name),
                "crc": crc,
                "size": usize,
                "zipped": csize,
                "comment": comment.decode("utf-8", "replace"),
            }
        )
        count += 1
    if count % 0x10000 != entries % 0x10000:
        raise NotZip(f"central directory has {count} records, end record says {entries}")
    return found


def _parents(name: bytes) -> Iterator[bytes]:
    """``a/b/c`` -> ``a/b/``, ``a/`` (Go's path.Dir loop)."""
    directory = posixpath.normpath(name[: name.rfind(b"/") + 1] or b".")
    while directory not in (b".", b"/"):
        yield directory + b"/"
        directory = posixpath.normpath(directory[: directory.rfind(b"/") + 1] or b".")


def _write(out_path: str, found: dict[bytes, bytes]) -> None:
    entries: dict[bytes, bytes] = dict(found)
    for name in found:
        for parent in _parents(name):
            entries.setdefault(parent, b"{}\n")

    def record(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    with open(out_path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        out.write(record(HEADER) + record(b"{}"))
        for name in sorted(entries):
            out.write(record(name) + record(entries[name]))


async def generate(source: RangeSource, size: int, out_path: str, chunk_size: int) -> None:
    """Write ``metadata.gz`` for the zip of ``size`` bytes behind ``source``; NotZip if it is none,
    ArchiveNotFound if the store has no such object, ReadError (an OSError) if it cannot read it."""
    if size < _EOCD.size:
        raise NotZip("too small")
    entries, offset, length = await directory_bounds(source, size)
    directory = bytearray()
    while len(directory) < length:
        directory += await source.read_at(offset + len(directory), min(chunk_size, length - len(directory)))
    found = _parse_directory(bytes(directory), entries)
    await asyncio.to_thread(_write, out_path, found)

"""Stream one file part into a destination: fixed-size chunks, hashes, size and the hard limit."""

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal

from workhorse.log import request_fields
from workhorse.secret import sign
from workhorse.upload.destination import Destination
from workhorse.upload.preparer import UploadOpts
from workhorse.upstream import State

HASHES = ("md5", "sha1", "sha256", "sha512")


class EntityTooLarge(Exception):
    """More bytes than Rails' MaximumSize: 413, partial object removed."""

    def __init__(self) -> None:
        super().__init__("entity is too large")


def _go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    return format(Decimal(repr(value)), "f")


@dataclass
class SavedFile:
    """GitLab's FileHandler: what Rails needs to know about a stored file."""

    name: str
    local_path: str = ""
    remote_url: str = ""
    remote_id: str = ""
    size: int = 0
    upload_duration: float = 0.0
    hashes: dict[str, str] = field(default_factory=dict)

    def fields(self, prefix: str, key: bytes) -> list[tuple[str, str]]:
        """``<prefix>.name`` ... ``<prefix>.sha512`` plus the signed ``<prefix>.gitlab-workhorse-upload``."""
        values = {
            "name": self.name,
            "path": self.local_path,
            "remote_url": self.remote_url,
            "remote_id": self.remote_id,
            "size": str(self.size),
            "upload_duration": _go_float(self.upload_duration),
            **self.hashes,
        }
        token = sign(key, {"upload": values})
        return [(f"{prefix}.{k}", v) for k, v in values.items()] + [(f"{prefix}.gitlab-workhorse-upload", token)]


class Upload:
    """Feeds a destination in ``chunk_size`` pieces; hashing runs in a thread beside the writes."""

    def __init__(self, state: State, dest: Destination, opts: UploadOpts, filename: str) -> None:
        self._state = state
        self.dest = dest
        self._opts = opts
        self._filename = filename
        self._chunk_size = state.settings.chunk_size
        self._buffer = bytearray()
        self._hashes = [hashlib.new(name) for name in HASHES]
        self._hashing: asyncio.Future[None] | None = None
        self._started = time.monotonic()
        self.size = 0
        self.finished = False

    def _hash(self, chunk: bytes) -> None:
        for h in self._hashes:
            h.update(chunk)

    async def _push(self, chunk: bytes) -> None:
        if self._hashing is not None:
            await self._hashing
        self._hashing = asyncio.ensure_future(asyncio.to_thread(self._hash, chunk))
        await self.dest.write(chunk)

    async def feed(self, data: bytes) -> None:
        """Take bytes as the parser yields them; over MaximumSize fails at once."""
        self.size += len(data)
        if self._opts.maximum_size > 0 and self.size > self._opts.maximum_size:
            raise EntityTooLarge()
        self._buffer += data
        while len(self._buffer) >= self._chunk_size:
            chunk = bytes(self._buffer[: self._chunk_size])
            del self._buffer[: self._chunk_size]
            await self._push(chunk)

    async def finish(self) -> SavedFile:
        if self._buffer:
            await self._push(bytes(self._buffer))
            self._buffer.clear()
        if self._hashing is not None:
            await self._hashing
        await self.dest.finish()
        self.finished = True
        saved = SavedFile(
            name=self._filename,
            local_path=self.dest.local_path,
            remote_url=self._opts.remote_url,
            remote_id=self._opts.remote_id,
            size=self.size,
            upload_duration=time.monotonic() - self._started,
            hashes={name: h.hexdigest() for name, h in zip(HASHES, self._hashes, strict=True)},
        )
        log_saved(self._state, saved, self.dest.client_mode, self._opts)
        return saved

    async def abort(self) -> None:
        if self._hashing is not None:
            self._hashing.cancel()
        await self.dest.abort()


def log_saved(state: State, saved: SavedFile, client_mode: str, opts: UploadOpts) -> None:
    """Workhorse's ``saved file`` line, and the instrument told when the bytes went to object storage."""
    if not saved.local_path:
        state.instrument.called_storage(
            "PUT",
            "/" + (opts.remote_temp_object_id or saved.remote_id),
            correlation_id=(request_fields.get() or {}).get("correlation_id", ""),
            started=time.time() - saved.upload_duration,
            status=200,
            bytes_in=saved.size,
            note=client_mode,
        )
    where = (
        {"local_temp_path": os.path.dirname(saved.local_path)}
        if saved.local_path
        else {"remote_temp_object": opts.remote_temp_object_id}
    )
    state.log.info(
        "saved file",
        copied_bytes=saved.size,
        is_local=bool(saved.local_path),
        is_remote=not saved.local_path,
        remote_id=saved.remote_id,
        client_mode=client_mode,
        filename=saved.name,
        **where,
    )

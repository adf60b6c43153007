"""Generated artifact bytes and a sink that checks what arrives without writing it.

The same seed and size give the same bytes, produced 1 MiB at a time, so a 1 GiB artifact is
never held in memory and its digest is known before it is downloaded.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


def blob_chunks(seed: int, size: int) -> Iterator[bytes]:
    """One random MiB repeated, each piece starting with its index: a piece moved, dropped or
    repeated changes the digest, and making a piece costs a copy, not a random draw."""
    block = random.Random(seed).randbytes(CHUNK)
    for index, offset in enumerate(range(0, size, CHUNK)):
        piece = index.to_bytes(8, "big") + block[8:]
        yield piece[: size - offset]


async def ablob_chunks(seed: int, size: int) -> AsyncIterator[bytes]:
    """``blob_chunks`` as a multipart body's source."""
    for piece in blob_chunks(seed, size):
        yield piece


def blob_digest(seed: int, size: int) -> Digest:
    sha = hashlib.sha256()
    for piece in blob_chunks(seed, size):
        sha.update(piece)
    return Digest(size, sha.hexdigest())


class _Hasher:
    def __init__(self) -> None:
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, chunk: bytes) -> int:
        self.sha.update(chunk)
        self.size += len(chunk)
        return len(chunk)


class DigestSink:
    """An ``ArchiveSink`` that keeps the size and SHA-256 of the last attempt's bytes: a load test
    verifies every byte without the disk (and extraction) in the measurement."""

    def __init__(self) -> None:
        self._hasher = _Hasher()

    @asynccontextmanager
    async def open(self) -> AsyncIterator[_Hasher]:
        self._hasher = _Hasher()  # a new attempt starts empty, as os.Create truncates
        yield self._hasher

    @property
    def digest(self) -> Digest:
        return Digest(self._hasher.size, self._hasher.sha.hexdigest())

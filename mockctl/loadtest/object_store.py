"""The embedded S3 (moto behind ``S3Gate``) in a process of its own, so a load run samples the
object store apart from Rails: ``python -m mockctl.loadtest.object_store PORT``.

moto keeps what each GET and PUT read until Python's cyclic collector runs
(../shared/reference/performance.md); collecting every few seconds keeps its RSS about the
objects it holds rather than about past transfers, as a real store's would be.

moto also reads an object whole into memory for each GET: 50 concurrent GETs of a 1 GiB
artifact would hold 50 GiB. ``StreamingGet`` answers a plain whole-object GET (after the
signature check) from the object's spooled file in 1 MiB pieces instead, as a real store
streams; anything else (ranges, HEAD, listing, writes) is moto's."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from moto.s3.models import s3_backends

from mockctl.embedded_s3 import EmbeddedS3

COLLECT_EVERY = 5.0
PIECE = 1 << 20
ACCOUNT = "123456789012"  # moto's default account


class StreamingGet:
    """WSGI middleware: a path-style ``GET /bucket/key`` (no Range, no sub-resource query) of an
    object moto has spooled to disk is streamed with ``os.pread``; the rest goes to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def _key(self, environ: dict[str, Any]) -> Any:
        if environ["REQUEST_METHOD"] != "GET" or "HTTP_RANGE" in environ:
            return None
        query = environ.get("QUERY_STRING", "")
        if any(not pair.startswith("X-Amz-") for pair in query.split("&") if pair):
            return None
        bucket, _, name = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        if not name:
            return None
        try:
            key = s3_backends[ACCOUNT]["aws"].get_object(bucket, unquote(name))
        except Exception:  # noqa: BLE001 - no such bucket or key: moto answers it
            return None
        buffer = getattr(key, "_value_buffer", None)
        return key if buffer is not None and getattr(buffer, "_rolled", False) else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = self._key(environ)
        if key is None:
            return self.app(environ, start_response)
        fd, size = key._value_buffer.fileno(), key.size
        start_response(
            "200 OK",
            [
                ("Content-Type", key.metadata.get("Content-Type", "binary/octet-stream")),
                ("Content-Length", str(size)),
                ("ETag", key.etag),
                ("Last-Modified", key.last_modified_RFC1123),
                ("Accept-Ranges", "bytes"),
            ],
        )
        return _pieces(fd, size)


def _pieces(fd: int, size: int) -> Iterator[bytes]:
    offset = 0
    while offset < size:
        piece = os.pread(fd, min(PIECE, size - offset), offset)
        if not piece:
            return
        offset += len(piece)
        yield piece


def main(port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    EmbeddedS3(port=port, wrap=StreamingGet).start()
    print("ready", flush=True)
    while True:
        time.sleep(COLLECT_EVERY)
        gc.collect()


if __name__ == "__main__":
    main(int(sys.argv[1]))

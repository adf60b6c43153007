"""X-Sendfile: Rails names a local file, Workhorse serves it (with single byte ranges)."""

import asyncio
import os
import re
from email.utils import formatdate
from typing import BinaryIO

from workhorse.httpio import Headers, Request, fail, respond, start
from workhorse.upstream import State

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    """The Range header asks for nothing this file has (416)."""


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` for a single byte range, None for the whole file."""
    if not value:
        return None
    match = _RANGE.match(value.strip())
    if not match:
        if value.strip().startswith("bytes=") and "," in value:
            return None  # several ranges: served whole, like a server that ignores Range
        raise Unsatisfiable(value)
    first, last = match.groups()
    if not first and not last:
        raise Unsatisfiable(value)
    if not first:
        length = min(int(last), size)
        if length == 0:
            raise Unsatisfiable(value)
        return size - length, size - 1
    start_at = int(first)
    if start_at >= size:
        raise Unsatisfiable(value)
    end = min(int(last), size - 1) if last else size - 1
    if end < start_at:
        raise Unsatisfiable(value)
    return start_at, end


def _open(path: str) -> tuple[BinaryIO, os.stat_result]:
    file = open(path, "rb")  # noqa: SIM115 - closed by serve()
    stat = os.fstat(file.fileno())
    if not os.path.isfile(path):
        file.close()
        raise IsADirectoryError(path)
    return file, stat


async def serve(state: State, req: Request, rails_headers: Headers, path: str) -> None:
    """Serve ``path`` in chunk_size reads off the event loop; missing file -> 404."""
    state.log.info("Send file", file=path)
    try:
        file, stat = await asyncio.to_thread(_open, path)
    except OSError:
        await fail(req.send, 404, "404 page not found")
        return
    try:
        size = stat.st_size
        headers = [
            *rails_headers,
            ("Accept-Ranges", "bytes"),
            ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
        ]
        try:
            byte_range = parse_range(req.header("range"), size)
        except Unsatisfiable:
            await respond(req.send, 416, [*headers, ("Content-Range", f"bytes */{size}")])
            return
        status, first, last = 200, 0, size - 1
        if byte_range:
            status, (first, last) = 206, byte_range
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        await start(req.send, status, [*headers, ("Content-Length", str(last - first + 1))])
        if req.method != "HEAD":
            await asyncio.to_thread(file.seek, first)
            left = last - first + 1
            while left > 0:
                chunk = await asyncio.to_thread(file.read, min(left, state.settings.chunk_size))
                if not chunk:
                    break
                left -= len(chunk)
                await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await req.send({"type": "http.response.body", "body": b""})
    finally:
        file.close()

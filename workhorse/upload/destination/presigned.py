"""Presigned PUT (``presigned_put``): stream the part to StoreURL as one chunked PUT."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp

from workhorse.upload.destination import StorageError
from workhorse.upload.preparer import UploadOpts
from workhorse.upstream import State

QUEUE_CHUNKS = 4


class PresignedPut:
    """A PUT running beside the request, fed through a small bounded queue."""

    client_mode = "presigned_put"
    local_path = ""

    def __init__(self, state: State, opts: UploadOpts) -> None:
        self._state = state
        self._opts = opts
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)
        self._task = asyncio.create_task(self._put())
        self._stored = False

    async def _body(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def _put(self) -> None:
        try:
            async with self._state.storage.put(
                self._opts.store_url, data=self._body(), headers=self._opts.put_headers
            ) as response:
                if response.status != 200:
                    raise StorageError(f"PUT request returned: {response.status} {response.reason}")
        except (aiohttp.ClientError, OSError) as exc:
            raise StorageError(f"PUT request: {exc}") from exc

    async def _feed(self, item: bytes | None) -> None:
        put = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self._task.result()  # raises the PUT's failure
            raise StorageError("PUT request ended before the body was sent")

    async def write(self, chunk: bytes) -> None:
        await self._feed(chunk)

    async def finish(self) -> None:
        await self._feed(None)
        await self._task
        self._stored = True

    async def abort(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._stored = True  # a PUT may have landed before the cut; DELETE is harmless if not
        await self.delete()

    async def delete(self) -> None:
        if not self._stored or not self._opts.delete_url:
            return
        try:
            async with self._state.storage.delete(self._opts.delete_url) as response:
                if response.status >= 300:
                    raise StorageError(f"DELETE returned {response.status}")
        except (aiohttp.ClientError, OSError, StorageError) as exc:
            self._state.log.error("error deleting object", exc, remote_id=self._opts.remote_id)

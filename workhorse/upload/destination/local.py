"""Local storage: the file part becomes a temp file in Rails' TempPath (``local_tempfile``)."""

import asyncio
import contextlib
import os
import tempfile


class LocalFile:
    """A new file inside TempPath, written off the event loop one chunk at a time."""

    client_mode = "local_tempfile"

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.local_path = path
        self._pending: asyncio.Future[None] | None = None

    @classmethod
    async def create(cls, temp_dir: str) -> "LocalFile":
        def make() -> tuple[int, str]:
            os.makedirs(temp_dir, mode=0o700, exist_ok=True)
            return tempfile.mkstemp(dir=temp_dir, prefix="gitlab-workhorse-upload")

        return cls(*await asyncio.to_thread(make))

    def _write_all(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    async def write(self, chunk: bytes) -> None:
        # One write in flight: the next chunk is received while this one hits the disk.
        await self.flush()
        self._pending = asyncio.ensure_future(asyncio.to_thread(self._write_all, chunk))

    async def flush(self) -> None:
        """Wait for the write in flight."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def finish(self) -> None:
        await self.flush()
        os.close(self._fd)
        self._fd = -1

    async def abort(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        await self.delete()

    async def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.remove, self.local_path)

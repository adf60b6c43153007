"""One part of a multipart upload, spooled to disk before it goes up (GitLab's ``part-buffer``).

Workhorse's presigned multipart path copies each part into a temp file and PUTs it from
there; Workhorse's own S3 client does the same here, so an upload holds a chunk in memory,
not parts, however many parts are in flight or uploads run at once.
"""

import asyncio
import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator

from workhorse.upload.destination.local import LocalFile


class PartBuffer(LocalFile):
    """LocalFile's pipelined writes into a temp file unlinked at once, read back as a PUT body."""

    @classmethod
    async def spool(cls) -> "PartBuffer":
        def make() -> int:
            fd, path = tempfile.mkstemp(prefix="part-buffer")
            os.remove(path)  # as GitLab does: the open file is all there is, gone when closed
            return fd

        return cls(await asyncio.to_thread(make), "")

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[io.FileIO]:
        """The part from its first byte, once the last write landed, on a descriptor of its own:
        once closed, a read still running for a cancelled PUT fails instead of reading a reused fd."""
        await self.flush()
        with io.FileIO(os.dup(self._fd), "rb") as body:
            body.seek(0)
            yield body

    async def delete(self) -> None:
        """Nothing to remove: closing the file (``abort``) frees it."""

"""Workhorse's own S3 client (``s3_client_v2``): multipart upload to RemoteTempObjectID.

A body of unknown length cannot be one PUT on real S3 (411), so anything bigger than one
part goes up as a multipart upload, as the Go SDK's upload manager does. Parts are spooled
to disk first (``PartBuffer``), so memory per upload does not grow with the part size or
the parts in flight.
"""

import asyncio
import contextlib
import posixpath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workhorse.upload.destination import StorageError
from workhorse.upload.destination.part_buffer import PartBuffer
from workhorse.upload.preparer import S3Config
from workhorse.upstream import State

PART_SIZE = 8 * 1024 * 1024  # S3 wants >= 5 MiB per part but the last
MAX_PARTS_IN_FLIGHT = 4
MISSING_REGION = "MissingRegion: could not find region configuration"


def normalize_key(key: str) -> str:
    """Clean the key and drop a leading slash, so ``a//b`` and ``/a/b`` land where Rails expects."""
    return posixpath.normpath(key).lstrip("/") if key else key


class S3Object:
    """Spools one part, uploads up to four parts at a time, completes or aborts."""

    client_mode = "s3_client_v2"
    local_path = ""

    def __init__(self, state: State, client: Any, config: S3Config, key: str) -> None:
        self._state = state
        self._client = client
        self._bucket = config.bucket
        self.key = normalize_key(key)
        self._part: PartBuffer | None = None
        self._part_size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._next_part = 1
        self._in_flight: list[asyncio.Task[None]] = []
        self._uploaded = False

    @classmethod
    async def create(cls, state: State, config: S3Config, key: str) -> "S3Object":
        if not config.region:
            # aws-sdk-go refuses to sign without a region; GitLab's docs show this exact line.
            state.log.error("error uploading S3 session", MISSING_REGION)
            raise StorageError(MISSING_REGION)
        client = await state.s3_client(config.endpoint, config.region, config.path_style)
        return cls(state, client, config, key)

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, operation)(Bucket=self._bucket, Key=self.key, **kwargs)
        except (BotoCoreError, ClientError, OSError) as exc:
            self._state.log.error("error uploading S3 session", exc)
            raise StorageError(f"{operation}: {exc}") from exc

    def _take_part(self) -> tuple[PartBuffer | None, int]:
        part, size = self._part, self._part_size
        self._part, self._part_size = None, 0
        return part, size

    async def _put(self, operation: str, part: PartBuffer | None, size: int, **kwargs: Any) -> Any:
        """One PUT of a spooled part (or of nothing), streamed from its file; the file goes after."""
        if part is None:
            return await self._call(operation, Body=b"", **kwargs)
        try:
            async with part.reading() as body:
                return await self._call(operation, Body=body, ContentLength=size, **kwargs)
        finally:
            await part.abort()

    async def _upload_part(self, number: int, part: PartBuffer, size: int) -> None:
        result = await self._put("upload_part", part, size, UploadId=self._upload_id, PartNumber=number)
        self._parts.append({"PartNumber": number, "ETag": result["ETag"]})

    async def _flush_part(self) -> None:
        part, size = self._take_part()
        try:
            if self._upload_id is None:
                self._upload_id = (await self._call("create_multipart_upload"))["UploadId"]
            while len(self._in_flight) >= MAX_PARTS_IN_FLIGHT:
                await self._in_flight.pop(0)
        except BaseException:
            await part.abort()
            raise
        number, self._next_part = self._next_part, self._next_part + 1
        self._in_flight.append(asyncio.create_task(self._upload_part(number, part, size)))

    async def write(self, chunk: bytes) -> None:
        for task in self._in_flight:
            if task.done():
                task.result()  # surface a failed part now, not at the end
        if self._part is None:
            self._part = await PartBuffer.spool()
        await self._part.write(chunk)
        self._part_size += len(chunk)
        if self._part_size >= PART_SIZE:
            await self._flush_part()

    async def finish(self) -> None:
        if self._upload_id is None:
            await self._put("put_object", *self._take_part())
        else:
            if self._part is not None:
                await self._flush_part()
            while self._in_flight:
                await self._in_flight.pop(0)
            parts = sorted(self._parts, key=lambda p: p["PartNumber"])
            await self._call("complete_multipart_upload", UploadId=self._upload_id, MultipartUpload={"Parts": parts})
        self._uploaded = True

    async def abort(self) -> None:
        for task in self._in_flight:
            task.cancel()
        for task in self._in_flight:
            with contextlib.suppress(BaseException):
                await task
        self._in_flight.clear()
        part, _size = self._take_part()
        if part is not None:
            await part.abort()
        if self._upload_id is not None and not self._uploaded:
            try:
                await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key, UploadId=self._upload_id)
            except (BotoCoreError, ClientError, OSError) as exc:
                self._state.log.error("error aborting S3 multipart upload", exc, remote_temp_object=self.key)
        await self.delete()

    async def delete(self) -> None:
        if not self._uploaded:
            return
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=self.key)
        except (BotoCoreError, ClientError, OSError) as exc:
            self._state.log.error("error deleting S3 object", exc, remote_temp_object=self.key)

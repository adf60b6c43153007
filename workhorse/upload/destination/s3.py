"""Workhorse's own S3 client (``s3_client_v2``): multipart upload to RemoteTempObjectID.

A body of unknown length cannot be one PUT on real S3 (411), so anything bigger than one
part goes up as a multipart upload, as the Go SDK's upload manager does.
"""

import asyncio
import contextlib
import posixpath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workhorse.upload.destination import StorageError
from workhorse.upload.preparer import S3Config
from workhorse.upstream import State

PART_SIZE = 8 * 1024 * 1024  # S3 wants >= 5 MiB per part but the last
MAX_PARTS_IN_FLIGHT = 4
MISSING_REGION = "MissingRegion: could not find region configuration"


def normalize_key(key: str) -> str:
    """Clean the key and drop a leading slash, so ``a//b`` and ``/a/b`` land where Rails expects."""
    return posixpath.normpath(key).lstrip("/") if key else key


class S3Object:
    """Buffers one part, uploads up to four parts at a time, completes or aborts."""

    client_mode = "s3_client_v2"
    local_path = ""

    def __init__(self, state: State, client: Any, config: S3Config, key: str) -> None:
        self._state = state
        self._client = client
        self._bucket = config.bucket
        self.key = normalize_key(key)
        self._buffer = bytearray()
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

    async def _upload_part(self, number: int, body: bytes) -> None:
        result = await self._call("upload_part", UploadId=self._upload_id, PartNumber=number, Body=body)
        self._parts.append({"PartNumber": number, "ETag": result["ETag"]})

    async def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = (await self._call("create_multipart_upload"))["UploadId"]
        while len(self._in_flight) >= MAX_PARTS_IN_FLIGHT:
            await self._in_flight.pop(0)
        body = bytes(self._buffer)
        self._buffer.clear()
        number, self._next_part = self._next_part, self._next_part + 1
        self._in_flight.append(asyncio.create_task(self._upload_part(number, body)))

    async def write(self, chunk: bytes) -> None:
        for task in self._in_flight:
            if task.done():
                task.result()  # surface a failed part now, not at the end
        self._buffer += chunk
        if len(self._buffer) >= PART_SIZE:
            await self._flush_part()

    async def finish(self) -> None:
        if self._upload_id is None:
            await self._call("put_object", Body=bytes(self._buffer))
        else:
            if self._buffer:
                await self._flush_part()
            while self._in_flight:
                await self._in_flight.pop(0)
            parts = sorted(self._parts, key=lambda p: p["PartNumber"])
            await self._call("complete_multipart_upload", UploadId=self._upload_id, MultipartUpload={"Parts": parts})
        self._buffer = bytearray()
        self._uploaded = True

    async def abort(self) -> None:
        for task in self._in_flight:
            task.cancel()
        for task in self._in_flight:
            with contextlib.suppress(BaseException):
                await task
        self._in_flight.clear()
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

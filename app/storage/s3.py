"""Object storage through aioboto3: the store GitLab calls ``REMOTE`` (file_store 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import ObjectStore
from app.storage.base import IncompleteUpload, ObjectInfo, StorageError

CHUNK = 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


DELETE_OBJECTS_MAX_KEYS = 1000  # S3 DeleteObjects takes at most 1,000 keys a request


class S3Store:
    remote = True

    def __init__(self, cfg: ObjectStore) -> None:
        self.cfg = cfg
        self.bucket = cfg.artifacts_bucket
        self.prefix = cfg.rails_bucket_prefix
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def endpoint(self) -> str | None:
        return self.cfg.connection.endpoint

    async def open(self) -> S3Store:
        conn = self.cfg.connection
        session = aioboto3.Session(
            aws_access_key_id=conn.aws_access_key_id,
            aws_secret_access_key=conn.aws_secret_access_key,
            region_name=conn.region or None,
        )
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if conn.path_style else "virtual"},
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=50,
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=conn.endpoint, config=config)
        )
        return self

    def key(self, key: str) -> str:
        return self.prefix + key

    async def ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)
        except BotoCoreError as exc:
            raise StorageError(f"object storage unreachable: {exc}") from exc

    async def put_file(self, key: str, source: Path) -> None:
        try:
            with open(source, "rb") as fh:  # noqa: ASYNC230 (upload_fileobj reads in chunks)
                await self._client.upload_fileobj(fh, self.bucket, self.key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"upload of {key} failed: {exc}") from exc

    async def put_bytes(self, key: str, data: bytes) -> None:
        try:
            await self._client.put_object(Bucket=self.bucket, Key=self.key(key), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"upload of {key} failed: {exc}") from exc

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            res = await self._client.head_object(Bucket=self.bucket, Key=self.key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise StorageError(f"HEAD {key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"HEAD {key} failed: {exc}") from exc
        return ObjectInfo(key, int(res["ContentLength"]))

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=self.key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"DELETE {key} failed: {exc}") from exc

    async def delete_many(self, keys: list[str]) -> list[str]:
        failed: list[str] = []
        for first in range(0, len(keys), DELETE_OBJECTS_MAX_KEYS):
            chunk = keys[first : first + DELETE_OBJECTS_MAX_KEYS]
            try:
                res = await self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self.key(k)} for k in chunk], "Quiet": True}
                )
            except (ClientError, BotoCoreError):
                failed.extend(chunk)
                continue
            failed.extend(e["Key"][len(self.prefix) :] for e in res.get("Errors", []))
        return failed

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(key)}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            res = await self._client.get_object(**kwargs)
            body = res["Body"]
            try:
                while chunk := await body.read(CHUNK):
                    yield chunk
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"GET {key} failed: {exc}") from exc

    async def list(self, prefix: str = "", marker: str = "", max_keys: int = 200) -> AsyncIterator[list[ObjectInfo]]:
        """Pages of keys, continued by ``marker`` = last key, as GitLab's fog listing does."""
        while True:
            try:
                res = await self._client.list_objects(
                    Bucket=self.bucket,
                    Prefix=self.key(prefix),
                    Marker=marker and self.key(marker),
                    MaxKeys=max_keys,
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"listing failed: {exc}") from exc
            contents = res.get("Contents", [])
            if not contents:
                return
            page = [ObjectInfo(o["Key"][len(self.prefix) :], int(o["Size"])) for o in contents]
            yield page
            if not res.get("IsTruncated"):
                return
            marker = page[-1].key

    async def presigned_url(self, method: str, key: str, expires_in: int) -> str:
        client_method = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object", "HEAD": "head_object"}[
            method
        ]
        return await self._client.generate_presigned_url(
            ClientMethod=client_method,
            Params={"Bucket": self.bucket, "Key": self.key(key)},
            ExpiresIn=expires_in,
        )

    async def incomplete_uploads(self) -> AsyncIterator[list[IncompleteUpload]]:
        """Multipart uploads under the prefix Workhorse writes to: a Workhorse killed mid-upload
        leaves its parts stored (and billed) where no object listing sees them."""
        prefix = self.cfg.artifacts_bucket_prefix
        listing: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                res = await self._client.list_multipart_uploads(**listing)
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"listing multipart uploads failed: {exc}") from exc
            uploads = res.get("Uploads", [])
            if uploads:
                yield [IncompleteUpload(u["Key"][len(prefix) :], u["Initiated"], u["UploadId"]) for u in uploads]
            if not res.get("IsTruncated"):
                return
            listing["KeyMarker"] = res["NextKeyMarker"]
            listing["UploadIdMarker"] = res["NextUploadIdMarker"]

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        key = self.cfg.artifacts_bucket_prefix + upload.key
        try:
            await self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload.upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":  # finished or aborted meanwhile
                raise StorageError(f"aborting the multipart upload of {upload.key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"aborting the multipart upload of {upload.key} failed: {exc}") from exc

    async def clear(self) -> None:
        async for page in self.list():
            try:
                await self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.key(o.key)} for o in page], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"clearing the bucket failed: {exc}") from exc

    async def close(self) -> None:
        await self._stack.aclose()

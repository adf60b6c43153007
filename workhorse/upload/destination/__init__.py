"""Where a file part's bytes go: one module per storage strategy, one small interface for all."""

import asyncio
from typing import Protocol

from workhorse.upload.preparer import UploadOpts
from workhorse.upstream import State


class StorageError(Exception):
    """The destination refused or failed the write (a 500 for the client)."""


class Destination(Protocol):
    """Write-once sink: ``write`` chunks, then ``finish``; ``abort`` before, ``delete`` after."""

    client_mode: str
    local_path: str

    async def write(self, chunk: bytes) -> None: ...

    async def finish(self) -> None: ...

    async def abort(self) -> None: ...

    async def delete(self) -> None: ...


async def storage_fault(state: State, method: str, path: str) -> int | None:
    """A ``storage`` fault rule on Workhorse's own object-storage call: sleeps for a delay,
    raises for a failure; returns a status the store should seem to answer (for send-url)."""
    rule = state.faults.fire("storage", method, path, {})
    if rule is None:
        return None
    if rule.delay:
        await asyncio.sleep(rule.delay)
    if rule.drop or rule.reset_after is not None or rule.truncate_after is not None:
        raise StorageError(f"{method} {path}: connection reset by peer (injected fault {rule.id})")
    if rule.status is not None and rule.status >= 400 and method != "GET":
        raise StorageError(f"{method} {path}: {rule.status} (injected fault {rule.id})")
    return rule.status


async def open_destination(state: State, opts: UploadOpts) -> Destination:
    """Pick the strategy Workhorse would: local temp file, own S3 client, or presigned PUT."""
    from workhorse.upload.destination import local, presigned, s3

    if not opts.is_local:
        await storage_fault(state, "PUT", "/" + (opts.remote_temp_object_id or opts.remote_id))
    if opts.is_local:
        return await local.LocalFile.create(opts.local_temp_path)
    if opts.s3 is not None:
        return await s3.S3Object.create(state, opts.s3, opts.remote_temp_object_id)
    return presigned.PresignedPut(state, opts)

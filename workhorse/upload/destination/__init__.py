"""Where a file part's bytes go: one module per storage strategy, one small interface for all."""

from typing import Protocol

from mockctl.faults import InjectedCut, storage_fault
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


async def injected_storage_status(state: State, method: str, path: str) -> int | None:
    """A ``storage`` fault on Workhorse's own object-storage call: a cut connection or a
    failed write raises; a GET gets back the status the store should seem to answer."""
    try:
        status = await storage_fault(state.faults, method, path)
    except InjectedCut as exc:
        raise StorageError(str(exc)) from None
    if status is not None and status >= 400 and method != "GET":
        raise StorageError(f"{method} {path}: {status} (injected fault)")
    return status


async def open_destination(state: State, opts: UploadOpts) -> Destination:
    """Pick the strategy Workhorse would: local temp file, own S3 client, or presigned PUT."""
    from workhorse.upload.destination import local, presigned, s3

    if not opts.is_local:
        await injected_storage_status(state, "PUT", "/" + (opts.remote_temp_object_id or opts.remote_id))
    if opts.is_local:
        return await local.LocalFile.create(opts.local_temp_path)
    if opts.s3 is not None:
        return await s3.S3Object.create(state, opts.s3, opts.remote_temp_object_id)
    return presigned.PresignedPut(state, opts)

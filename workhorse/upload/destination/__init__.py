"""Where a file part's bytes go: one module per storage strategy, one small interface for all."""

from typing import Protocol

from workhorse.instrumentation import StorageCut
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


async def injected_storage_status(state: State, method: str, path: str, operation: str = "") -> int | None:
    """The instrument's say on Workhorse's own storage call: a cut connection or a failed write
    raises, worded as Go words it (``write <path>: invalid argument`` with ``operation="write"``
    and the answer's ``error``; a local ``read`` likewise); a GET gets back the status the store
    should seem to answer."""
    try:
        answer = await state.instrument.calling_storage(method, path)
    except StorageCut as exc:
        raise StorageError(str(exc)) from None
    if answer is None:
        return None
    if answer.status >= 400 and (method != "GET" or operation):
        raise StorageError(f"{operation or method} {path}: {answer.error or f'{answer.status} (injected fault)'}")
    return answer.status


async def open_destination(state: State, opts: UploadOpts) -> Destination:
    """Pick the strategy Workhorse would: local temp file, own S3 client, or presigned PUT."""
    from workhorse.upload.destination import local, presigned, s3

    if opts.is_local:
        file = await local.LocalFile.create(opts.local_temp_path)
        try:  # a broken mount (CIFS) fails the write of the new temp file
            await injected_storage_status(state, "PUT", file.local_path, operation="write")
        except StorageError:
            await file.abort()
            raise
        return file
    await injected_storage_status(state, "PUT", "/" + (opts.remote_temp_object_id or opts.remote_id))
    if opts.s3 is not None:
        return await s3.S3Object.create(state, opts.s3, opts.remote_temp_object_id)
    return presigned.PresignedPut(state, opts)

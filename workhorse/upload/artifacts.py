"""``POST /api/v4/jobs/:id/artifacts``: GitLab Workhorse's artifacts upload, end to end."""

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from urllib.parse import parse_qs

import httpx

from workhorse import proxy
from workhorse.api import Refused, preauthorize, rails_request, signed_rails_headers
from workhorse.httpio import BODY_HEADERS, ClientDisconnected, Request, fail, respond
from workhorse.limits import ClientBodyTooLarge
from workhorse.secret import sign
from workhorse.upload import metadata
from workhorse.upload.destination import StorageError
from workhorse.upload.destination.upload import HASHES, EntityTooLarge, SavedFile, log_saved
from workhorse.upload.multipart import MissingBoundary, NotMultipart, UnexpectedEOF, UnusableBoundary, boundary_of
from workhorse.upload.preparer import PrepareError, UploadOpts, prepare
from workhorse.upload.rewrite import Form, InjectedClientParam, TooManyFiles, rewrite
from workhorse.upstream import State

ROUTE = re.compile(r"^/api/v4/jobs/[0-9]+/artifacts$")
REWRITTEN_FIELDS_HEADER = "Gitlab-Workhorse-Multipart-Fields"


def _hash_file(path: str, chunk_size: int) -> tuple[int, dict[str, str]]:
    hashes = [hashlib.new(name) for name in HASHES]
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            size += len(chunk)
            for h in hashes:
                h.update(chunk)
    return size, {name: h.hexdigest() for name, h in zip(HASHES, hashes, strict=True)}


async def build_metadata(state: State, opts: UploadOpts, saved: SavedFile, temp_paths: list[str]) -> SavedFile | None:
    """metadata.gz beside the upload (TempPath) or in a temp dir (remote); None when not a zip."""
    started = time.monotonic()
    if opts.is_local:
        directory, source = opts.local_temp_path, metadata.LocalSource(state, saved.local_path)
    else:
        directory = tempfile.mkdtemp(prefix="gitlab-workhorse-metadata")
        temp_paths.append(directory)
        source = metadata.RemoteSource(state, saved.remote_url)
    fd, path = tempfile.mkstemp(dir=directory, prefix="gitlab-workhorse-upload")
    os.close(fd)
    temp_paths.append(path)
    try:
        await metadata.generate(source, saved.size, path, state.settings.chunk_size)
    except metadata.NotZip as exc:
        state.log.info("zip metadata: not a zip archive, no metadata", reason=str(exc))
        return None
    except metadata.ArchiveNotFound as exc:
        state.log.error("zip metadata: zip archive not found, no metadata", exc)
        return None
    size, hashes = await asyncio.to_thread(_hash_file, path, state.settings.chunk_size)
    meta = SavedFile(
        name="metadata.gz", local_path=path, size=size, upload_duration=time.monotonic() - started, hashes=hashes
    )
    log_saved(state, meta, "local_tempfile", opts)
    return meta


async def _forward(state: State, req: Request, form: Form) -> int:
    """POST the rewritten form to Rails and relay its answer; returns Rails' status."""
    content_type, body = form.encode()
    rewritten = {name: saved.local_path for name, saved in form.saved.items()}
    headers = [
        *signed_rails_headers(state, req, BODY_HEADERS),
        ("Content-Type", content_type),
        (REWRITTEN_FIELDS_HEADER, sign(state.key, {"rewritten_fields": rewritten})),
    ]
    request = rails_request(state, req.method, req.path_qs, headers, body)
    response = await state.rails.send(request, stream=True)
    try:
        status = response.status_code
        form.committed = status < 400
        await proxy.relay(state, req, response)
        return status
    finally:
        await response.aclose()


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


async def _cleanup(state: State, opts: UploadOpts, form: Form, temp_paths: list[str]) -> None:
    """Partial writes always go; stored objects go unless Rails took them (SkipDelete)."""
    for upload in form.uploads:
        if not upload.finished:
            await upload.abort()
        elif opts.is_local or not form.committed or not opts.skip_delete:
            await upload.dest.delete()
    for path in reversed(temp_paths):  # files before the directories holding them
        await asyncio.to_thread(_remove, path)


async def _save_and_forward(
    state: State, req: Request, opts: UploadOpts, boundary: bytes, form: Form, temp_paths: list[str]
) -> None:
    fmt = (parse_qs(req.query).get("artifact_format") or [""])[0]

    async def on_saved(saved: SavedFile) -> None:
        if fmt.lower() not in ("", "zip"):
            return
        meta = await build_metadata(state, opts, saved, temp_paths)
        if meta is not None:
            form.add_file("metadata", meta, state.key)

    async with asyncio.timeout(opts.timeout):
        await rewrite(state, req.body(), boundary, opts, form, on_saved)
    await _forward(state, req, form)


async def handle(state: State, req: Request) -> None:
    """Pre-authorize, store the file part, add metadata for zips, hand the rewritten form to Rails."""
    try:
        answer = await preauthorize(state, req)
    except httpx.HTTPError as exc:
        state.log.error("", f"preAuthorizeHandler: PreAuthorize: {exc}")
        await fail(req.send, 500, "Internal Server Error")
        return
    if isinstance(answer, Refused):
        await respond(req.send, answer.status, answer.headers, answer.body)
        return
    try:
        opts = prepare(answer, bool(state.settings.s3_access_key_id and state.settings.s3_secret_access_key))
        boundary = boundary_of(req.header("content-type"))
    except NotMultipart:  # proxied as it is, but still through the signing proxy
        await proxy.serve(state, req, signed=True)
        return
    except PrepareError as exc:
        state.log.error("", f"preAuthorizeHandler: {exc}")
        await fail(req.send, 500, "Internal Server Error")
        return
    except MissingBoundary as exc:
        state.log.error("", exc)
        await fail(req.send, 400, "Bad Request")
        return
    form, temp_paths = Form(), []
    try:
        await _save_and_forward(state, req, opts, boundary, form, temp_paths)
    except (ClientDisconnected, ClientBodyTooLarge):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes GitLab's status for it
        if req.response_started:
            raise
        await _fail_upload(state, req, opts, exc)
    finally:
        await _cleanup(state, opts, form, temp_paths)


async def _fail_upload(state: State, req: Request, opts: UploadOpts, exc: Exception) -> None:
    """GitLab's handleMultipartError: one status per kind of failure."""
    message = f"handleFileUploads: extract files from multipart: {exc}"
    match exc:
        case EntityTooLarge() | metadata.MetadataTooLarge():
            state.log.error("", exc, limit="MaximumSize", maximum_size=opts.maximum_size)
            await fail(req.send, 413, "Request Entity Too Large")
        case TooManyFiles():
            state.log.error("", exc)
            await fail(req.send, 400, str(exc))
        case InjectedClientParam() | UnexpectedEOF() | UnusableBoundary():
            state.log.error("", exc)
            await fail(req.send, 400, "Bad Request")
        case TimeoutError():
            state.log.error("", "context deadline exceeded")
            await fail(req.send, 504, "deadline exceeded")
        case httpx.HTTPError():
            state.log.error("", f"badgateway: failed to receive response: {exc}")
            await fail(req.send, 502, "Bad Gateway")
        case StorageError():
            state.log.error("", f"handleFileUploads: extract files from multipart: persisting multipart file: {exc}")
            await fail(req.send, 500, "Internal Server Error")
        case _:
            state.log.error("", message)
            await fail(req.send, 500, "Internal Server Error")

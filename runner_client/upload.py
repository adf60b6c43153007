"""``artifacts-uploader``: one POST per try (network/gitlab.go UploadRawArtifacts) and the
helper's retries around it (commands/helpers/artifacts_uploader.go), runner_facts.md §1."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlencode

from runner_client.archive import archive_writer, artifact_filename, threaded_stream
from runner_client.connection import Connection
from runner_client.files import enumerate_files
from runner_client.progress import Meter
from runner_client.responses import ArtifactsError, message_from_json
from runner_client.transport import Backoff, TransportError

DEFAULT_TRIES = 3
SERVICE_UNAVAILABLE_TRIES = 6


class UploadState(Enum):
    SUCCEEDED = "succeeded"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too large"
    SERVICE_UNAVAILABLE = "service unavailable"
    FAILED = "failed"


@dataclass(frozen=True)
class UploadOptions:
    base_name: str
    expire_in: str | None = None
    artifact_format: str | None = None
    artifact_type: str | None = None

    def query(self) -> str:
        """``url.Values.Encode()``: keys sorted, a space as ``+``, empty values left out."""
        pairs = {
            "expire_in": self.expire_in,
            "artifact_format": self.artifact_format,
            "artifact_type": self.artifact_type,
        }
        return urlencode(sorted((k, v) for k, v in pairs.items() if v))

    @property
    def message_prefix(self) -> str:
        if self.artifact_type:
            return f'Uploading artifacts as "{self.artifact_type}" to coordinator...'
        return "Uploading artifacts to coordinator..."


def _escape_quotes(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class MultipartBody:
    """Go's ``multipart.Writer`` with one ``file`` part. Iterating it again starts the source
    again, so httpx can re-send it on a 307/308 and each try re-creates the archive."""

    def __init__(
        self, source: Callable[[], AsyncIterator[bytes]], filename: str, meter: Callable[[], Meter] | None = None
    ) -> None:
        self.source, self.filename, self.meter = source, filename, meter
        self.boundary = secrets.token_hex(30)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def head(self) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{_escape_quotes(self.filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()

    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        meter = self.meter() if self.meter else None
        try:
            yield self.head()
            async for chunk in self.source():
                if meter:
                    meter.update(len(chunk))
                yield chunk
            yield self.tail()
        finally:
            if meter:
                meter.close()


async def upload_raw(
    client: Connection, job_id: int, token: str, body: MultipartBody, options: UploadOptions
) -> tuple[UploadState, str]:
    """One try; returns the state and, for a transport error, its text."""
    url = f"{client.api_url}jobs/{job_id}/artifacts?{options.query()}"
    request_id = client.new_request_id()

    def build():  # noqa: ANN202 - httpx.Request
        headers = client.headers(token, request_id)
        headers["Content-Type"] = body.content_type
        return client.http.build_request("POST", url, content=body, headers=headers)

    fields: dict[str, object] = {"id": job_id, "token": client.short(token)}
    prefix = options.message_prefix
    try:
        res = await client.requester.send(build)
    except TransportError as exc:
        client.add_correlation(fields, None, request_id)
        client.log.error(prefix, "error", error=str(exc), **fields)
        return UploadState.FAILED, str(exc)
    try:
        fields[client.profile.status_field] = client.profile.status_value(res)
        client.add_correlation(fields, res, request_id)
        text = await message_from_json(res)
        code = res.status_code
        if code == 201:
            client.log.info(prefix, text, **fields)
            return UploadState.SUCCEEDED, ""
        fields["status"] = code
        if code == 307:
            client.log.error(prefix, text, "empty location", **fields)
            return UploadState.FAILED, ""
        if code == 403:
            client.log.error(prefix, text, **fields)
            return UploadState.FORBIDDEN, ""
        if code == 413:
            client.log.error(prefix, text, **fields)
            return UploadState.TOO_LARGE, ""
        if code == 503:
            client.log.error(prefix, text, **fields)
            return UploadState.SERVICE_UNAVAILABLE, ""
        client.log.warning(prefix, text, **fields)
        return UploadState.FAILED, ""
    finally:
        await res.aclose()


async def upload_artifacts(
    client: Connection,
    job_id: int,
    token: str,
    paths: list[str],
    *,
    exclude: list[str] | None = None,
    untracked: bool = False,
    workdir: str = ".",
    name: str | None = "artifacts",
    expire_in: str | None = None,
    artifact_format: str | None = None,
    artifact_type: str | None = None,
    compression_level: str | None = None,
) -> UploadState | None:
    """Archive and upload; None when nothing matched (``ERROR: No files to upload``, no request).
    Raises ``ArtifactsError`` where gitlab-runner ends with FATAL."""
    files = enumerate_files(workdir, paths, client.log, exclude, untracked)
    if not files.files:
        client.log.error("No files to upload")
        return None
    fmt = artifact_format or "zip"
    writer = archive_writer(fmt, files, compression_level)
    body = MultipartBody(
        lambda: threaded_stream(writer), artifact_filename(name, fmt), lambda: client.meter("Uploading artifacts")
    )
    options = UploadOptions(body.filename, expire_in, artifact_format, artifact_type)
    return await send_with_retries(client, job_id, token, body, options)


async def send_with_retries(
    client: Connection, job_id: int, token: str, body: MultipartBody, options: UploadOptions
) -> UploadState:
    """``upload_raw`` with the helper's retries: 503 up to 6 tries, other failures 3, backoff
    1 s doubling to 5 s. Raises ``ArtifactsError`` where gitlab-runner ends with FATAL."""
    backoff = Backoff(minimum=1.0, maximum=5.0, factor=2.0, jitter=False)
    tries = 0
    while True:
        tries += 1
        state, transport_error = await upload_raw(client, job_id, token, body, options)
        if state is UploadState.SUCCEEDED:
            return state
        if state is UploadState.FORBIDDEN:
            raise ArtifactsError("permission denied")
        if state is UploadState.TOO_LARGE:
            raise ArtifactsError("too large")
        if state is UploadState.SERVICE_UNAVAILABLE:
            error, max_tries = "service unavailable", SERVICE_UNAVAILABLE_TRIES
        elif client.profile.descriptive_retry_error:
            error, max_tries = transport_error or "upload failed with no response from coordinator", DEFAULT_TRIES
        else:
            error, max_tries = "invalid argument", DEFAULT_TRIES
        if tries >= max_tries:
            raise ArtifactsError(error)
        client.log.warning("Retrying...", context="artifacts-uploader", error=error)
        await client.sleep(backoff.duration())

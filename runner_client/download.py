"""``artifacts-downloader`` (commands/helpers/artifacts_downloader.go, network/gitlab.go
DownloadArtifacts), runner_facts.md §2: the classic redirect-following GET, the 19.x direct
flow (no-redirect first request, then the coordinator again or parallel ranged GETs), the
helper's fixed-interval retries, and extraction into the target directory."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from enum import Enum
from pathlib import Path
from typing import Protocol

import httpx

from runner_client.archive import ArchiveError, extract
from runner_client.connection import Connection
from runner_client.profile import status_line
from runner_client.responses import ArtifactsError, message_from_json_or_xml
from runner_client.transport import TransportError, go_error

MESSAGE = "Downloading artifacts from coordinator..."
RANGE_SIZE = 16 << 20
RANGE_CONCURRENCY = 16
GO_USER_AGENT = "Go-http-client/1.1"  # what the 19.x no-redirect client sends: no runner User-Agent


class DownloadState(Enum):
    SUCCEEDED = "succeeded"
    NOT_FOUND = "not found"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    FAILED = "failed"


_FATAL = {
    DownloadState.NOT_FOUND: "file does not exist",
    DownloadState.FORBIDDEN: "permission denied",
    DownloadState.UNAUTHORIZED: "permission denied",
    DownloadState.FAILED: "invalid argument",
}


class Writable(Protocol):
    def write(self, chunk: bytes, /) -> object: ...


class ArchiveSink(Protocol):
    """Where an attempt's bytes go. Each attempt opens it again and starts it empty
    (``os.Create`` truncates), so a retry never appends to a failed attempt's bytes."""

    def open(self) -> AbstractAsyncContextManager[Writable]: ...


class FileSink:
    """The runner's temp file; ranged downloads write into it at offsets."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Writable]:
        with await asyncio.to_thread(open, self.path, "wb") as out:
            yield out


class _Attempt:
    """One download attempt into ``sink``."""

    def __init__(self, client: Connection, job_id: int, token: str, sink: ArchiveSink, direct: bool) -> None:
        self.client, self.job_id, self.token, self.sink, self.direct = client, job_id, token, sink, direct
        self.log = client.log
        self.url = f"{client.api_url}jobs/{job_id}/artifacts?{'direct_download=true' if direct else ''}"
        self.request_id = client.new_request_id()
        self.fields: dict[str, object] = {"id": job_id, "token": client.short(token)}

    async def save(self, res: httpx.Response, fields: dict[str, object]) -> DownloadState:
        meter = self.client.meter("Downloading artifacts")
        try:
            async with self.sink.open() as out:
                async for chunk in res.aiter_bytes():
                    out.write(chunk)
                    meter.update(len(chunk))
        except (httpx.HTTPError, OSError) as exc:
            self.log.error(MESSAGE, "error", error=str(exc), **fields)
            return DownloadState.FAILED
        finally:
            meter.close()
        self.log.info(MESSAGE, "ok", **fields)
        return DownloadState.SUCCEEDED

    async def classify(self, res: httpx.Response, success_fields: dict[str, object] | None = None) -> DownloadState:
        fields = dict(self.fields)
        fields[self.client.profile.status_field] = self.client.profile.status_value(res)
        fields["host"] = res.url.netloc.decode()
        self.client.add_correlation(fields, res, self.request_id)
        code = res.status_code
        if code == 200:
            return await self.save(res, fields if success_fields is None else success_fields)
        if code == 403:
            fields["status"] = await message_from_json_or_xml(res)
            self.log.error(MESSAGE, "forbidden", **fields)
            return DownloadState.FORBIDDEN
        if code == 401:
            fields["status"] = status_line(res)
            self.log.error(MESSAGE, "unauthorized", **fields)
            return DownloadState.UNAUTHORIZED
        if code == 404:
            self.log.error(MESSAGE, "not found", **fields)
            return DownloadState.NOT_FOUND
        fields["status"] = status_line(res)
        self.log.warning(MESSAGE, "failed", **fields)
        return DownloadState.FAILED

    async def classic(self, success_fields: dict[str, object] | None = None) -> DownloadState:
        """GET with the redirect-following client and the transport retry under it."""

        def build() -> httpx.Request:
            return self.client.http.build_request(
                "GET", self.url, headers=self.client.headers(self.token, self.request_id)
            )

        try:
            res = await self.client.requester.send(build)
        except TransportError as exc:
            fields = dict(self.fields)
            self.client.add_correlation(fields, None, self.request_id)
            self.log.error(MESSAGE, "error", str(exc), **fields)
            return DownloadState.FAILED
        try:
            return await self.classify(res, success_fields)
        finally:
            await res.aclose()

    async def direct_flow(self) -> DownloadState:
        """19.x: ask without following redirects; on 302/307 fetch the object in ranges or ask again."""
        headers = {"User-Agent": GO_USER_AGENT, "Job-Token": self.token}
        if self.client.profile.request_id:
            headers["X-Request-Id"] = self.request_id
        request = self.client.http.build_request("GET", self.url, headers=headers)
        fields = dict(self.fields)
        try:
            res = await self.client.http.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            self.client.add_correlation(fields, None, self.request_id)
            self.log.error(MESSAGE, "error", go_error(request, exc), **fields)
            return DownloadState.FAILED
        try:
            fields[self.client.profile.status_field] = self.client.profile.status_value(res)
            self.client.add_correlation(fields, res, self.request_id)
            location = res.headers.get("Location")
            if res.status_code in (302, 307) and location:
                location = str(res.url.join(location))
                self.log.info(f"Direct download from {httpx.URL(location).netloc.decode()}")
                if self.client.parallel_transfer and await self.ranged(location, fields):
                    return DownloadState.SUCCEEDED
                return await self.classic(success_fields=fields)
            if res.status_code == 200:
                return await self.save(res, fields)
            return await self.classify(res)
        finally:
            await res.aclose()

    async def ranged(self, location: str, fields: dict[str, object]) -> bool:
        """FF_USE_PARALLEL_ARTIFACT_TRANSFER: probe ``bytes=0-0`` (no JOB-TOKEN); past 16 MiB,
        fetch 16 MiB ranges, 16 at a time, each written at its offset (into a file sink only)."""
        if not isinstance(self.sink, FileSink):
            return False
        http = self.client.http
        probe = await http.get(location, headers={"Range": "bytes=0-0", "User-Agent": GO_USER_AGENT})
        match = re.fullmatch(r"bytes 0-0/(\d+)", probe.headers.get("Content-Range", ""))
        if probe.status_code != 206 or not match or int(match.group(1)) <= RANGE_SIZE:
            return False
        total = int(match.group(1))
        limit = asyncio.Semaphore(RANGE_CONCURRENCY)
        meter = self.client.meter("Downloading artifacts")

        async def fetch(fd: int, start: int) -> None:
            end = min(start + RANGE_SIZE, total) - 1
            headers = {"Range": f"bytes={start}-{end}", "User-Agent": GO_USER_AGENT}
            async with limit, http.stream("GET", location, headers=headers) as res:
                if res.status_code != 206:
                    raise ArchiveError(f"ranged download: {status_line(res)}")
                offset = start
                async for chunk in res.aiter_bytes():
                    os.pwrite(fd, chunk, offset)
                    offset += len(chunk)
                    meter.update(len(chunk))
                if offset != end + 1:
                    raise ArchiveError(f"ranged download: short range {start}-{end}")

        fd = os.open(self.sink.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, total)
            await asyncio.gather(*(fetch(fd, start) for start in range(0, total, RANGE_SIZE)))
        except (httpx.HTTPError, ArchiveError, OSError) as exc:
            self.log.error(MESSAGE, "error", error=str(exc), **fields)
            return False
        finally:
            os.close(fd)
            meter.close()
        self.log.info(MESSAGE, "ok", **fields)
        return True

    async def run(self) -> DownloadState:
        if self.direct and self.client.profile.direct_flow:
            return await self.direct_flow()
        return await self.classic()


async def fetch_archive(
    client: Connection,
    job_id: int,
    token: str,
    sink: ArchiveSink,
    *,
    direct_download: bool = True,
    retry: int = 2,
    retry_time: float = 1.0,
) -> DownloadState:
    """The archive into ``sink``, with the helper's retries: ``direct_download=true`` on the first
    attempt only, ``DownloadFailed`` retried ``retry`` times ``retry_time`` apart. Raises
    ``ArtifactsError`` where the runner ends FATAL."""
    state = await _Attempt(client, job_id, token, sink, direct_download).run()
    for _ in range(retry):
        if state is not DownloadState.FAILED:
            break
        await client.sleep(retry_time)
        client.log.warning("Retrying...", error="invalid argument")
        state = await _Attempt(client, job_id, token, sink, False).run()
    if state is not DownloadState.SUCCEEDED:
        raise ArtifactsError(_FATAL[state])
    return state


async def download_artifacts(
    client: Connection,
    job_id: int,
    token: str,
    *,
    target_dir: str | os.PathLike[str] = ".",
    direct_download: bool = True,
    retry: int = 2,
    retry_time: float = 1.0,
    staging_dir: str | None = None,
) -> DownloadState:
    """Download into a temp file (``fetch_archive``), then extract. Raises ``ArtifactsError``
    where the runner ends FATAL."""
    fd, name = tempfile.mkstemp(prefix="artifacts", dir=staging_dir)
    os.close(fd)
    dest = Path(name)
    try:
        state = await fetch_archive(
            client,
            job_id,
            token,
            FileSink(dest),
            direct_download=direct_download,
            retry=retry,
            retry_time=retry_time,
        )
        try:
            await asyncio.to_thread(extract, dest, target_dir, client.log)
        except (ArchiveError, OSError) as exc:
            raise ArtifactsError(str(exc)) from exc
        return state
    finally:
        await asyncio.to_thread(dest.unlink, missing_ok=True)

"""``ArtifactsClient``: the runner's connection to one coordinator, and the Python API.

async with ArtifactsClient("http://127.0.0.1:3000") as c:
    await c.upload(42, token, ["out/"], artifact_type="archive", expire_in="1 week")
    await c.download(41, token, target_dir="deps")
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

import httpx

from runner_client.download import DownloadState, download_artifacts
from runner_client.log import RunnerLog
from runner_client.profile import RunnerProfile, get_profile
from runner_client.progress import Meter, make_meter
from runner_client.tokens import shorten_token
from runner_client.transport import RetryRequester, Sleep
from runner_client.upload import UploadState, upload_artifacts


def api_url(url: str) -> str:
    """The runner's base: trailing ``/`` and ``/ci`` removed, then ``/api/v4/``."""
    url = url.rstrip("/")
    return (url[: -len("/ci")] if url.endswith("/ci") else url) + "/api/v4/"


class ArtifactsClient:
    """Uploads and downloads job artifacts as gitlab-runner ``runner_version`` (``17`` or ``19``) does.

    ``sleep`` and ``rng`` drive every wait (helper backoff, transport backoff and jitter,
    download retry time), so tests can check the schedule without waiting for it.
    ``download_flow`` (``direct`` / ``classic``) overrides the version's download behaviour;
    ``parallel_transfer`` is ``FF_USE_PARALLEL_ARTIFACT_TRANSFER``.
    """

    def __init__(
        self,
        url: str,
        *,
        runner_version: str | RunnerProfile = "19",
        download_flow: str | None = None,
        parallel_transfer: bool = False,
        log: RunnerLog | None = None,
        progress: str = "auto",
        progress_stream: TextIO | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        timeout: float | None = 3600.0,
        response_header_timeout: float = 600.0,
        user_agent: str | None = None,
    ) -> None:
        self.api_url = api_url(url)
        self.profile = get_profile(runner_version).with_download_flow(download_flow)
        self.parallel_transfer = parallel_transfer
        self.log = log or RunnerLog()
        self.progress, self.progress_stream = progress, progress_stream
        self.sleep = sleep
        self.user_agent = user_agent or self.profile.user_agent
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=30.0, read=response_header_timeout),
            max_redirects=10,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers={"Accept-Encoding": "gzip"},
        )
        for name in ("Accept", "Connection"):  # Go's client sends neither
            self.http.headers.pop(name, None)
        self.requester = RetryRequester(
            self.http, self.log, retry_server_errors=self.profile.retry_server_errors, sleep=sleep, rng=rng
        )

    async def __aenter__(self) -> ArtifactsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- what every request and log line carries ------------------------------------------------

    def new_request_id(self) -> str:
        return secrets.token_hex(16)

    def headers(self, token: str, request_id: str) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Job-Token": token}
        if self.profile.request_id:
            headers["X-Request-Id"] = request_id
        return headers

    def short(self, token: str) -> str:
        return shorten_token(token, self.profile.token_rule)

    def add_correlation(self, fields: dict[str, object], res: httpx.Response | None, request_id: str) -> None:
        if self.profile.request_id:
            fields["correlation_id"] = (res.headers.get("X-Request-Id") if res is not None else None) or request_id

    def meter(self, label: str) -> Meter:
        return make_meter(label, self.progress, self.progress_stream)

    # --- the two commands -------------------------------------------------------------------------

    async def upload(
        self,
        job_id: int,
        token: str,
        paths: list[str],
        *,
        exclude: list[str] | None = None,
        untracked: bool = False,
        workdir: str | os.PathLike[str] = ".",
        name: str | None = "artifacts",
        expire_in: str | None = None,
        artifact_format: str | None = None,
        artifact_type: str | None = None,
        compression_level: str | None = None,
    ) -> UploadState | None:
        """``artifacts-uploader``. None: nothing matched, nothing sent. Raises ``ArtifactsError`` on FATAL."""
        return await upload_artifacts(
            self,
            job_id,
            token,
            paths,
            exclude=exclude,
            untracked=untracked,
            workdir=str(workdir),
            name=name,
            expire_in=expire_in,
            artifact_format=artifact_format,
            artifact_type=artifact_type,
            compression_level=compression_level,
        )

    async def download(
        self,
        job_id: int,
        token: str,
        *,
        target_dir: str | os.PathLike[str] = ".",
        direct_download: bool = True,
        retry: int = 2,
        retry_time: float = 1.0,
        staging_dir: str | None = None,
    ) -> DownloadState:
        """``artifacts-downloader``: download and extract into ``target_dir``. Raises ``ArtifactsError`` on FATAL."""
        return await download_artifacts(
            self,
            job_id,
            token,
            target_dir=target_dir,
            direct_download=direct_download,
            retry=retry,
            retry_time=retry_time,
            staging_dir=staging_dir,
        )

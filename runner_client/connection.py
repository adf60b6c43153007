"""The runner's connection to one coordinator: HTTP client, retries, the version's profile, and
what every request and log line carries. ``ArtifactsClient`` is one; the upload and download
flows take one."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO

import httpx

from runner_client.log import RunnerLog
from runner_client.profile import RunnerProfile, get_profile
from runner_client.progress import Meter, make_meter
from runner_client.tokens import shorten_token
from runner_client.transport import RetryRequester, Sleep


def api_url(url: str) -> str:
    """The runner's base: trailing ``/`` and ``/ci`` removed, then ``/api/v4/``."""
    url = url.rstrip("/")
    return (url[: -len("/ci")] if url.endswith("/ci") else url) + "/api/v4/"


class Connection:
    """One coordinator as gitlab-runner ``runner_version`` (``17`` or ``19``) reaches it.

    ``sleep`` and ``rng`` drive every wait (transport backoff and jitter), so tests can check
    the schedule without waiting for it.
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

    async def __aenter__(self) -> Self:
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

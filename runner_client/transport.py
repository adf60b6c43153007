"""The transport retry under every call (network/retry_requester.go, v18.3+): 408, 429, 500,
502, 503, 504 and >= 512 are retried, at most 5 attempts in all, waiting jittered exponential
backoff (100 ms to 60 s, factor 2) unless ``RateLimit-ResetTime`` or ``Retry-After`` says
otherwise. Before v18.3 only a 429 carrying ``RateLimit-ResetTime`` was retried."""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import httpx

from runner_client.log import RunnerLog

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5

Sleep = Callable[[float], Awaitable[None]]


class TransportError(Exception):
    """No response at all (connection refused, reset, archive failure mid-body)."""


# Go's syscall texts for what a dial most often meets on a runner's host.
DIAL_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def go_error(request: httpx.Request, exc: BaseException) -> str:
    """What Go's net/http says when nothing came back: ``Post "<url>": dial tcp 127.0.0.1:9:
    connect: connection refused`` (httpx would say ``All connection attempts failed``)."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) not in DIAL_ERRORS:
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError) and cause is not None:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        detail = f"dial tcp {url.host}:{port}: connect: {DIAL_ERRORS[cause.errno]}"  # type: ignore[attr-defined]
    else:
        detail = str(exc) or type(exc).__name__
    return f'{request.method.capitalize()} "{request.url}": {detail}'


class Backoff:
    """jpillora/backoff: ``min * factor**n``, jittered uniformly into ``[min, that]``, capped at ``max``."""

    def __init__(
        self,
        minimum: float = 0.1,
        maximum: float = 60.0,
        factor: float = 2.0,
        jitter: bool = True,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.minimum, self.maximum, self.factor, self.jitter, self.rng = minimum, maximum, factor, jitter, rng
        self.attempt = 0

    def duration(self) -> float:
        delay = self.minimum * self.factor**self.attempt
        self.attempt += 1
        if self.jitter:
            delay = self.rng() * (delay - self.minimum) + self.minimum
        return min(delay, self.maximum)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for the values logged here (``137.5ms``, ``1s``, ``1m0s``)."""
    ns = round(seconds * 1e9)
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{_trim(ns / 1e3)}µs"
    if ns < 1_000_000_000:
        return f"{_trim(ns / 1e6)}ms"
    minutes, rest = divmod(ns, 60_000_000_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{_trim(rest / 1e9)}s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def retry_wait(res: httpx.Response, backoff: Backoff, now: Callable[[], float] = time.time) -> float:
    """``RateLimit-ResetTime`` (RFC 1123) first, then ``Retry-After`` seconds, else the backoff."""
    reset = res.headers.get("RateLimit-ResetTime")
    if reset:
        try:
            wait = parsedate_to_datetime(reset).timestamp() - now()
        except (TypeError, ValueError):
            wait = 0
        if wait > 0:
            return wait
    after = res.headers.get("Retry-After", "")
    if after.isdigit() and int(after) > 0:
        return float(after)
    return backoff.duration()


class RetryRequester:
    """Sends a request built afresh for each attempt (the body is re-creatable), retrying as
    the profile's runner release did. Redirects are followed inside one attempt, as Go's client does."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        log: RunnerLog,
        *,
        retry_server_errors: bool = True,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Sleep,
        rng: Callable[[], float] = random.random,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.log, self.retry_server_errors = client, log, retry_server_errors
        self.max_attempts, self.sleep, self.rng, self.now = max_attempts, sleep, rng, now

    def should_retry(self, res: httpx.Response) -> bool:
        if self.retry_server_errors:
            return res.status_code in RETRY_STATUSES or res.status_code >= 512
        return res.status_code == 429 and "RateLimit-ResetTime" in res.headers

    async def send(
        self, build: Callable[[], httpx.Request], *, follow_redirects: bool = True, retry: bool = True
    ) -> httpx.Response:
        """A streamed response; the caller closes it. Raises ``TransportError`` when nothing came back."""
        backoff = Backoff(rng=self.rng)
        attempts = 0
        while True:
            request = build()
            try:
                res = await self.client.send(request, stream=True, follow_redirects=follow_redirects)
            except (httpx.HTTPError, OSError, TransportError) as exc:
                raise TransportError(
                    f"couldn't execute {request.method} against {request.url}: {go_error(request, exc)}"
                ) from exc
            attempts += 1
            if not retry or not self.should_retry(res) or attempts >= self.max_attempts:
                return res
            await res.aclose()
            wait = retry_wait(res, backoff, self.now)
            self.log.info(
                "Waiting before making the next call",
                context="ratelimit-requester-gitlab-request",
                duration=go_duration(wait),
                method=request.method,
                url=str(request.url),
            )
            await self.sleep(wait)

"""The real coordinator (``stack``) for round trips, and a small counting server for the
failure semantics the coordinator cannot inject yet."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from mockctl.ports import free_port
from runner_client.client import ArtifactsClient
from runner_client.log import RunnerLog
from tests.conftest import serve_app
from tests.e2e.conftest import stack, stack_session  # noqa: F401


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen, int], Awaitable[tuple[int, dict[str, str], bytes]]]


@dataclass
class FailureServer:
    """Answers every request with ``handler(request, call_number)`` and remembers each request."""

    url: str
    calls: list[Seen] = field(default_factory=list)
    handler: Handler | None = None

    def on(self, handler: Handler) -> None:
        self.calls.clear()
        self.handler = handler

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path}?{c.query}" for c in self.calls]

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - raw ASGI
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = Seen(
            scope["method"],
            scope["path"],
            scope["query_string"].decode(),
            {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            bytes(body),
        )
        self.calls.append(seen)
        assert self.handler is not None
        status, headers, content = await self.handler(seen, len(self.calls))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": content})


@pytest.fixture(scope="session")
async def failure_server_session() -> AsyncIterator[FailureServer]:
    port = free_port()
    app = FailureServer(f"http://127.0.0.1:{port}")
    server, task = await serve_app(app, port)
    yield app
    server.should_exit = True
    await task


@pytest.fixture
def failures(failure_server_session: FailureServer) -> FailureServer:
    failure_server_session.calls.clear()
    return failure_server_session


@dataclass
class Recorder:
    """Injected ``sleep``: records each wait instead of waiting."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(url: str, sleep: Recorder | None = None, **kwargs) -> ArtifactsClient:  # noqa: ANN003
    return ArtifactsClient(
        url,
        log=RunnerLog(io.StringIO(), color=False),
        progress="off",
        sleep=sleep or Recorder(),
        rng=lambda: 0.5,
        **kwargs,
    )

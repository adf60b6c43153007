"""The ASGI request as Workhorse sees it, and the few ways it answers on its own."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
Headers = list[tuple[str, str]]

# Connection-level headers never forwarded by a proxy (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
BODY_HEADERS = frozenset({"content-length", "transfer-encoding", "content-type"})

# NGINX's lingering_time and lingering_timeout. After answering early (a 413, a 403 from Rails) NGINX keeps reading
# and dropping the rest of the body before closing, and Go's server half-closes and waits: either way a client still
# writing reads the answer instead of a connection reset.
LINGERING_TIME = 30.0
LINGERING_TIMEOUT = 5.0


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


@dataclass
class Request:
    """One incoming request: ASGI scope pieces plus the id used to correlate logs."""

    method: str
    path: str
    query: str
    headers: Headers
    receive: Receive
    send: Send
    request_id: str
    response_started: bool = field(default=False)
    raw_path: str = ""  # the path as the client sent it (``%2F``, ``%3F`` kept); "" = ``path``

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def path_qs(self) -> str:
        """What Rails is asked for: the raw path, so encoded slashes and question marks stay encoded."""
        path = self.raw_path or self.path
        return f"{path}?{self.query}" if self.query else path

    async def body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; raises ClientDisconnected on a cut-off body."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("client disconnected before the body was complete")
            if chunk := message.get("body", b""):
                yield chunk
            if not message.get("more_body", False):
                return


def body_expected(headers: Headers) -> bool:
    """Whether the request announces a body (chunked or a non-zero Content-Length)."""
    values = dict(headers)
    return "chunked" in values.get("transfer-encoding", "").lower() or values.get("content-length", "0") not in (
        "",
        "0",
    )


async def linger(receive: Receive) -> None:
    """Read and drop what is left of a request body, within NGINX's lingering limits."""
    deadline = time.monotonic() + LINGERING_TIME
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), min(left, LINGERING_TIMEOUT))
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def without(headers: Iterable[tuple[str, str]], names: Iterable[str]) -> Headers:
    """Headers minus ``names`` (lower case) and minus hop-by-hop headers."""
    drop = HOP_BY_HOP | set(names)
    return [(k, v) for k, v in headers if k.lower() not in drop]


async def start(send: Send, status: int, headers: Headers) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def respond(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    """A complete response in one go, for the short answers Workhorse writes itself."""
    await start(send, status, [*headers, ("content-length", str(len(body)))])
    await send({"type": "http.response.body", "body": body})


async def fail(send: Send, status: int, text: str) -> None:
    """Go's http.Error: plain text, a trailing newline, nosniff."""
    headers = [("content-type", "text/plain; charset=utf-8"), ("x-content-type-options", "nosniff")]
    await respond(send, status, headers, (text + "\n").encode())

"""NGINX's client_max_body_size in front of Workhorse: refuse big bodies before Rails sees them."""

import asyncio
import time

from workhorse.httpio import Message, Receive, Send, start

# NGINX's lingering_time and lingering_timeout: after an early answer it keeps reading (and dropping) the rest of
# the body, so a client still writing reads the 413 instead of a connection reset.
LINGERING_TIME = 30.0
LINGERING_TIMEOUT = 5.0

NGINX_413_BODY = (
    b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    b"<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class ClientBodyTooLarge(Exception):
    """The client sent more than client_max_body_size (NGINX's 413, not Rails' MaximumSize)."""

    def __init__(self, limit: int, seen: int, *, body_pending: bool = True) -> None:
        super().__init__(f"client intended to send too large body: {seen} bytes, limit {limit}")
        self.body_pending = body_pending


def declared_too_large(headers: dict[str, str], limit: int) -> int | None:
    """The declared Content-Length when it is over ``limit`` (checked before reading a byte)."""
    if not limit:
        return None
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return length if length > limit else None


def limited_receive(receive: Receive, limit: int) -> Receive:
    """Wrap ``receive`` so a chunked body is counted and cut off once over ``limit``."""
    if not limit:
        return receive
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ClientBodyTooLarge(limit, seen, body_pending=message.get("more_body", False))
        return message

    return wrapped


async def refuse_body(send: Send, receive: Receive, body_pending: bool) -> None:
    """NGINX's 413, then its lingering close: the whole answer goes out first, the rest of the body is drained.

    The ASGI response stays open while draining, because the server stops delivering the body once it is complete.
    """
    await start(
        send,
        413,
        [("Content-Type", "text/html"), ("Connection", "close"), ("content-length", str(len(NGINX_413_BODY)))],
    )
    await send({"type": "http.response.body", "body": NGINX_413_BODY, "more_body": body_pending})
    if not body_pending:
        return
    deadline = time.monotonic() + LINGERING_TIME
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), min(left, LINGERING_TIMEOUT))
        except TimeoutError:
            break
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})

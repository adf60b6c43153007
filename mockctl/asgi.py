"""Carry out a fault rule on an ASGI request, down to the TCP connection.

Drops and resets need the connection itself: uvicorn's ``send`` is a method of its
request cycle, which holds the asyncio transport. Wrap the outermost ASGI callable (the
one uvicorn calls) so that ``send`` is still uvicorn's own.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from mockctl.faults import FaultRule

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def _transport(send: Send) -> asyncio.Transport | None:
    return getattr(getattr(send, "__self__", None), "transport", None)


def _close(send: Send, reset: bool) -> None:
    """Close the client's connection now: a TCP reset (RST), or an orderly close (FIN)."""
    transport = _transport(send)
    if transport is None:
        raise RuntimeError("connection faults need uvicorn's own send (wrap the outermost ASGI app)")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


class Cut(Exception):
    """The connection was cut on purpose; nothing more is sent."""


async def apply(rule: FaultRule, app: App, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Answer the request the way ``rule`` says (``app`` serves it when the rule only slows or cuts it)."""
    if rule.delay:
        await asyncio.sleep(rule.delay)
    if rule.drop:
        _close(send, reset=False)
        return
    if rule.status is not None:
        body = (rule.body or "").encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in rule.headers.items()]
        if not any(k == b"content-type" for k, _ in headers):
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
        await send(
            {
                "type": "http.response.start",
                "status": rule.status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if rule.bandwidth is None and rule.reset_after is None and rule.truncate_after is None:
        await app(scope, receive, send)
        return
    limit = rule.reset_after if rule.reset_after is not None else rule.truncate_after
    sent = 0

    async def faulty_send(message: Message) -> None:
        nonlocal sent
        if message["type"] != "http.response.body":
            await send(message)
            return
        body = message.get("body", b"")
        if limit is not None and sent + len(body) >= limit:
            await _dribble(send, body[: limit - sent], rule.bandwidth, more=True)
            sent = limit
            _close(send, reset=rule.reset_after is not None)
            raise Cut()
        sent += len(body)
        await _dribble(send, body, rule.bandwidth, more=message.get("more_body", False))

    try:
        await app(scope, receive, faulty_send)
    except Cut:
        return


async def _dribble(send: Send, body: bytes, bandwidth: int | None, more: bool) -> None:
    """Send ``body`` at ``bandwidth`` bytes per second (in tenth-of-a-second pieces)."""
    if not bandwidth:
        await send({"type": "http.response.body", "body": body, "more_body": more})
        return
    piece = max(1, bandwidth // 10)
    for start in range(0, len(body), piece):
        chunk = body[start : start + piece]
        last = start + piece >= len(body)
        await send({"type": "http.response.body", "body": chunk, "more_body": more or not last})
        await asyncio.sleep(len(chunk) / bandwidth)
    if not body and not more:
        await send({"type": "http.response.body", "body": b"", "more_body": False})

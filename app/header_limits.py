"""Puma's request-header limits (80 KiB a value, 112 KiB in all), which uvicorn lacks.

Puma answers a bare 400; mockcoord's 400 names the header so a test author sees why.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_FIELD_VALUE = 80 * 1024
MAX_HEADER = 112 * 1024


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope["headers"])
            if problem:
                body = json.dumps({"message": f"400 Bad Request - {problem}"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    total = 0
    for name, value in headers:
        if len(value) > MAX_FIELD_VALUE:
            return f"header {name.decode('latin-1')} is longer than {MAX_FIELD_VALUE} bytes"
        total += len(name) + len(value) + 4
    if total > MAX_HEADER:
        return f"request headers are longer than {MAX_HEADER} bytes in all"
    return None

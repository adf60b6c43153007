"""``X-Request-Id`` in and out, as GitLab's correlation middleware does (raw ASGI: cheap)."""

from __future__ import annotations

import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

current: ContextVar[str] = ContextVar("correlation_id", default="")  # Labkit::Correlation::CorrelationId.current_id


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        correlation_id = incoming or secrets.token_hex(13).upper().encode()[:26]
        scope.setdefault("state", {})["correlation_id"] = correlation_id.decode("latin-1")
        current.set(correlation_id.decode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", correlation_id))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)

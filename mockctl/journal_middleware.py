"""Record every Rails request in the journal (raw ASGI: counts bytes without buffering)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.instrumentation import collect_steps
from mockctl.journal import Journal, JournalEntry
from mockctl.tokens import masked_headers, masked_query

# The object-storage door journals itself, as object storage.
UNJOURNALED = ("/-/mock/requests", "/-/mock/flows", "/-/health", "/-/readiness", "/-/mock/object-storage/")


class JournalMiddleware:
    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNJOURNALED):
            await self.app(scope, receive, send)
            return
        entry = JournalEntry(
            component="rails",
            method=scope["method"],
            path=scope["path"],
            query=masked_query(scope.get("query_string", b"").decode("latin-1")),
            headers=masked_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
        )
        started = time.perf_counter()
        entry.steps = collect_steps()

        async def counting_receive() -> Message:
            message = await receive()
            entry.bytes_in += len(message.get("body", b""))
            return message

        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            entry.status = entry.status or 500
            self.journal.record(entry)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            elif message["type"] == "http.response.body":
                entry.bytes_out += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record()  # before the client holds the whole answer, so it can check the journal at once
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if not recorded:
                record()

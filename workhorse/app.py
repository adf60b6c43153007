"""The Workhorse ASGI app: request ids, the front body limit, routing and the access log."""

import os
import time
from typing import Any

import httpx

from workhorse import heap, proxy
from workhorse.config import WorkhorseSettings
from workhorse.httpio import (
    ClientDisconnected,
    Message,
    Receive,
    Request,
    Send,
    body_expected,
    fail,
    linger,
    respond,
)
from workhorse.instrumentation import Instrument
from workhorse.limits import NGINX_413_BODY, ClientBodyTooLarge, declared_too_large, limited_receive
from workhorse.log import JsonLog, mask_uri, request_fields
from workhorse.secret import load_secret
from workhorse.upload import artifacts
from workhorse.upstream import State

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_request_id() -> str:
    """A 26-character ULID (48-bit ms time + 80 random bits), like labkit's correlation ids."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class Workhorse:
    """Raw ASGI callable: a proxy needs streaming and disconnects, not a framework."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self.state.instrument.front_door(scope, receive, send, self._http)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.state.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        request_id = next((v for k, v in headers if k == "x-request-id" and v), None) or new_request_id()
        query = scope.get("query_string", b"").decode("latin-1")
        fields = {"correlation_id": request_id, "method": scope["method"], "uri": mask_uri(scope["path"], query)}
        token = request_fields.set(fields)
        outcome = {"status": 0, "written": 0, "read": 0}
        body_pending = body_expected(headers)

        async def counted_receive() -> Message:
            nonlocal body_pending
            message = await receive()
            outcome["read"] += len(message.get("body", b""))
            body_pending = message["type"] == "http.request" and message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                req.response_started = True
                outcome["status"] = message["status"]
                kept = [(k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*kept, (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                outcome["written"] += len(message.get("body", b""))
                if body_pending and not message.get("more_body", False):
                    # Answered before the body was read: drain it while the answer stays open, since the server
                    # stops delivering the body once the response is complete.
                    await send({**message, "more_body": True})
                    await linger(counted_receive)
                    message = {"type": "http.response.body", "body": b""}
                if not message.get("more_body", False):
                    finish()  # told before the client holds the whole answer, so it can check at once
            await send(message)

        started, wall_started = time.monotonic(), time.time()
        done = False

        def finish() -> None:
            """The access log line, and the instrument told, once per request."""
            nonlocal done
            done = True
            self.state.log.info(
                "access",
                status=outcome["status"],
                duration_ms=int((time.monotonic() - started) * 1000),
                written_bytes=outcome["written"],
                remote_ip=(scope.get("client") or ("", 0))[0],
                user_agent=req.header("user-agent") or "",
            )
            self.state.instrument.served(
                req,
                status=outcome["status"],
                started=wall_started,
                bytes_in=outcome["read"],
                bytes_out=outcome["written"],
            )

        limit = self.state.settings.client_max_body_size
        req = Request(
            scope["method"],
            scope["path"],
            query,
            headers,
            limited_receive(counted_receive, limit),
            tracked_send,
            request_id,
            raw_path=scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0],
        )
        try:
            if (declared := declared_too_large(dict(headers), limit)) is not None:
                raise ClientBodyTooLarge(limit, declared)
            await self._route(req)
        except ClientBodyTooLarge as exc:
            self.state.log.error(
                "client intended to send too large body", exc, limit="client_max_body_size", client_max_body_size=limit
            )
            if not req.response_started:
                await respond(
                    tracked_send, 413, [("Content-Type", "text/html"), ("Connection", "close")], NGINX_413_BODY
                )
        except ClientDisconnected as exc:
            self.state.log.error("", exc)
            outcome["status"] = outcome["status"] or 499
        except httpx.HTTPError as exc:
            self.state.log.error("", f"badgateway: failed to receive response: {exc}")
            if not req.response_started:
                await fail(tracked_send, 502, "Bad Gateway")
        except Exception as exc:  # noqa: BLE001 - a proxy answers 500 rather than dropping the connection
            self.state.log.error("", f"{type(exc).__name__}: {exc}")
            if not req.response_started:
                await fail(tracked_send, 500, "Internal Server Error")
        finally:
            if not done:
                finish()
            request_fields.reset(token)

    async def _route(self, req: Request) -> None:
        if req.method == "POST" and artifacts.ROUTE.match(req.path):
            async with heap.trimmed_when_idle():
                await artifacts.handle(self.state, req)
        else:
            await proxy.serve(self.state, req)


def create_app(settings: WorkhorseSettings, instrument: Instrument | None = None) -> Workhorse:
    """Build the ASGI app; the secret file must exist and hold Rails' shared key.
    Without an ``instrument``, plain Workhorse (see ``workhorse.instrumentation``)."""
    return Workhorse(
        State(settings, load_secret(settings.secret_file), JsonLog(settings.log_file), instrument or Instrument())
    )

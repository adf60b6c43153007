"""The object-storage door: presigned direct downloads that storage faults and the clock reach.

A 302 to a real presigned URL sends the runner straight to the object store, past every
fault rule and with an expiry the store checks against real time. When a ``storage`` rule
could match the object, or the mock clock is moved, Rails redirects instead to its own
``/-/mock/object-storage/<key>?token=...`` (a URL signed with the Workhorse secret, as a
presigned URL is signed with the store's key). There the rule is carried out at the
connection level (``mockctl.rails.FaultMiddleware``: status, delay, bandwidth, reset, truncate, drop), the
expiry is checked against the mock clock (S3's ``403 AccessDenied Request has expired``),
and the bytes come from the store unfaulted, as the object store itself would send them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import jwt
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app import clock
from app.state import AppState, get_state
from mockctl.faults import FaultRule
from mockctl.instrument import DOOR_PREFIX, instrument
from mockctl.journal import Journal, JournalEntry
from mockctl.s3_errors import SIGNATURE_DOES_NOT_MATCH, error_document

_RANGE = "bytes="


def _error(code: str, message: str, status: int, **extra: str) -> Response:
    """S3's XML error document (the runner reads ``Code`` and ``Message`` of a 403)."""
    return Response(error_document(code, message, extra), status_code=status, media_type="application/xml")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range, clamped; None: the whole object."""
    if not header or not header.startswith(_RANGE) or "," in header:
        return None
    first, _, last = header[len(_RANGE) :].partition("-")
    if not first:
        return (max(size - int(last or 0), 0), size - 1) if last.isdigit() else None
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    return int(first), min(int(last), size - 1) if last else size - 1


async def serve(request: Request) -> Response:
    state = get_state(request)
    key = request.path_params["key"]
    started = time.perf_counter()
    try:
        claims = jwt.decode(request.query_params.get("token", ""), state.secret, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return _error("SignatureDoesNotMatch", SIGNATURE_DOES_NOT_MATCH, 403)
    if claims.get("key") != key:
        return _error("SignatureDoesNotMatch", SIGNATURE_DOES_NOT_MATCH, 403)
    expires = datetime.fromtimestamp(float(claims["exp_at"]), UTC)
    if clock.now() > expires:
        return _error(
            "AccessDenied",
            "Request has expired",
            403,
            Expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    store = state.raw_store
    info = await store.head(key)
    if info is None:
        return _error("NoSuchKey", "The specified key does not exist.", 404, Key=key)
    span = _byte_range(request.headers.get("range"), info.size)
    if span is not None and span[0] > span[1]:
        return _error("InvalidRange", "The requested range is not satisfiable", 416)
    start, end = span or (0, info.size - 1)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    status = 206 if span is not None else 200
    if request.method == "HEAD":
        _record(state, request, key, status, 0, started)
        return Response(b"", status_code=status, headers=headers, media_type="binary/octet-stream")

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        try:
            if end >= start:
                async for chunk in store.iter_range(key, start, end):
                    sent += len(chunk)
                    yield chunk
        finally:
            _record(state, request, key, status, sent, started)

    return StreamingResponse(body(), status_code=status, headers=headers, media_type="binary/octet-stream")


def _record(state: AppState, request: Request, key: str, status: int, sent: int, started: float) -> None:
    instrument(state).journal.record(
        JournalEntry(
            component="storage",
            via="door",
            method=request.method,
            path=key,
            status=status,
            bytes_out=sent,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            note="presigned download through the object-storage door",
        )
    )


def record_fault(journal: Journal, method: str, key: str, rule: FaultRule) -> None:
    """A rule that answers or cuts in place of the store still shows in the journal."""
    journal.record(
        JournalEntry(
            component="storage", via="door", method=method, path=key, status=rule.status or 0, note=f"fault {rule.id}"
        )
    )


routes = [Route(DOOR_PREFIX + "{key:path}", serve, methods=["GET", "HEAD"])]

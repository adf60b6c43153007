"""``send-url:``: fetch a URL (object storage) and stream it to the client as Rails' answer."""

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from workhorse.httpio import HOP_BY_HOP, Headers, Request, fail, start
from workhorse.senddata import record_fetch
from workhorse.upload.destination import StorageError, injected_storage_status
from workhorse.upstream import State

PREFIX = "send-url:"
# Rails decides caching, not the object store.
PRESERVED = frozenset({"cache-control", "expires", "date", "pragma"})


def decode(encoded: str) -> dict[str, Any]:
    """Parse the URL-safe base64 JSON instruction (padding optional, as Go's decoder allows)."""
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def _header_items(header_map: dict[str, Any] | None) -> Headers:
    """Go's http.Header (``{name: [values]}``) as a header list; bare strings tolerated."""
    items: Headers = []
    for name, values in (header_map or {}).items():
        for value in [values] if isinstance(values, str) else values:
            items.append((name, value))
    return items


async def serve(state: State, req: Request, rails_headers: Headers, encoded: str) -> None:
    """Stream ``URL`` with the client's Range/If-* headers; any failure before the first byte is a 500."""
    try:
        params = decode(encoded)
        url: str = params["URL"]
    except (ValueError, KeyError) as exc:
        state.log.error("SendURL: unpack sendData", exc)
        await fail(req.send, 500, "Internal Server Error")
        return
    headers = _header_items(params.get("Header"))
    headers += [(k, v) for k, v in req.headers if k == "range" or k.startswith("if-")]
    state.log.info("SendURL: sending", url=url.split("?")[0], path=req.path)
    started, outcome = time.time(), {"status": 500, "bytes": 0}
    try:
        try:
            injected = await injected_storage_status(state, params.get("Method") or "GET", urlsplit(url).path)
        except StorageError as exc:
            state.log.error("SendURL: Get request failed", exc)
            await fail(req.send, 500, "Internal Server Error")
            return
        if injected is not None and injected >= 400:
            outcome["status"] = injected
            await fail(req.send, injected, f"injected object storage answer {injected}")
            return
        await _fetch(state, req, params, url, headers, rails_headers, outcome)
    finally:
        record_fetch(state, req, params.get("Method") or "GET", url, started, outcome, "send-url")


async def _fetch(
    state: State,
    req: Request,
    params: dict[str, Any],
    url: str,
    headers: Headers,
    rails_headers: Headers,
    outcome: dict[str, int],
) -> None:
    """Stream the object; ``outcome`` gets the object store's status and the bytes relayed."""
    try:
        response = await state.storage.request(
            params.get("Method") or "GET",
            url,
            headers=headers,
            data=params.get("Body") or None,
            allow_redirects=bool(params.get("AllowRedirects", False)),
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        state.log.error("SendURL: Get request failed", exc)
        await fail(req.send, 500, "Internal Server Error")
        return
    async with response:
        upstream = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        replaced = {k.lower() for k, _ in upstream} - PRESERVED
        merged = [(k, v) for k, v in rails_headers if k.lower() not in replaced]
        merged += [(k, v) for k, v in upstream if k.lower() not in PRESERVED | HOP_BY_HOP]
        extra = _header_items(params.get("ResponseHeaders"))
        overridden = {k.lower() for k, _ in extra}
        merged = [(k, v) for k, v in merged if k.lower() not in overridden] + extra
        outcome["status"] = response.status
        await start(req.send, response.status, merged)
        if req.method != "HEAD":
            async for chunk in response.content.iter_any():
                outcome["bytes"] += len(chunk)
                await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await req.send({"type": "http.response.body", "body": b""})

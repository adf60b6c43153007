"""Streaming pass-through to Rails, handing Workhorse instructions in the answer to their handlers."""

from collections.abc import AsyncIterator

import httpx

from workhorse import sendfile
from workhorse.api import rails_headers, rails_request, signed_rails_headers
from workhorse.content_headers import DETECT_HEADER
from workhorse.httpio import Headers, Request, start, without
from workhorse.senddata import artifacts_entry, send_url
from workhorse.upstream import State

SEND_DATA_HEADER = "gitlab-workhorse-send-data"
SENDFILE_HEADER = "x-sendfile"


def _has_body(req: Request) -> bool:
    return req.header("transfer-encoding") is not None or req.header("content-length") not in (None, "0")


async def serve(state: State, req: Request, signed: bool = False) -> None:
    """Forward the request as it is, body streamed, and relay the answer; ``signed`` only on an
    intercepted route (GitLab's ``signingProxy``), every other request goes unsigned."""
    content: AsyncIterator[bytes] | None = req.body() if _has_body(req) else None
    headers = [*(signed_rails_headers(state, req) if signed else rails_headers(req)), *state.instrument.forwarding(req)]
    request = rails_request(state, req.method, req.path_qs, headers, content)
    response = await state.rails.send(request, stream=True)
    try:
        await relay(state, req, response)
    finally:
        await response.aclose()


async def relay(state: State, req: Request, response: httpx.Response) -> None:
    """Send Rails' answer on, unless the instrument answers instead or Rails tells Workhorse to
    serve a URL or a file."""
    if (body := await state.instrument.relaying(req, response)) is not None:
        headers = without(response.headers.multi_items(), {"content-length"})
        await start(req.send, response.status_code, [*headers, ("Content-Length", str(len(body)))])
        await req.send({"type": "http.response.body", "body": body})
        return
    # Instructions for Workhorse never reach the client (``headers.RemoveResponseHeaders``).
    headers: Headers = without(response.headers.multi_items(), {DETECT_HEADER})
    if await _serve_instruction(state, req, response, headers):
        # Rails' own body beside an instruction is dropped (Go's senddata discards it) but read to
        # its end: an httpx response closed unread takes its keep-alive connection to Rails with it.
        async for _ in response.aiter_raw():
            pass
        return
    await start(req.send, response.status_code, headers)
    async for chunk in response.aiter_raw():
        await req.send({"type": "http.response.body", "body": chunk, "more_body": True})
    await req.send({"type": "http.response.body", "body": b""})


async def _serve_instruction(state: State, req: Request, response: httpx.Response, headers: Headers) -> bool:
    """Serve a send-url, artifact entry or X-Sendfile instruction in Rails' answer; False if it has none."""
    send_data = response.headers.get(SEND_DATA_HEADER, "")
    if response.status_code == 200 and send_data.startswith(send_url.PREFIX):
        kept = without(headers, {SEND_DATA_HEADER, "content-length"})
        await send_url.serve(state, req, kept, send_data.removeprefix(send_url.PREFIX))
    elif response.status_code == 200 and send_data.startswith(artifacts_entry.PREFIX):
        kept = without(headers, {SEND_DATA_HEADER, "content-length"})
        detect = _go_bool(response.headers.get(DETECT_HEADER, ""))
        await artifacts_entry.serve(state, req, kept, send_data.removeprefix(artifacts_entry.PREFIX), detect)
    elif file := response.headers.get(SENDFILE_HEADER):
        await sendfile.serve(state, req, without(headers, {SENDFILE_HEADER, "content-length"}), file)
    else:
        return False
    return True


def _go_bool(value: str) -> bool:
    """``strconv.ParseBool`` for true values (anything else, or garbage, is false)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")

"""How Workhorse addresses Rails: its identifying headers and the pre-authorization call."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from workhorse import __version__
from workhorse.httpio import BODY_HEADERS, Headers, Request, without
from workhorse.secret import API_REQUEST_HEADER, api_request_token
from workhorse.upstream import State

RESPONSE_CONTENT_TYPE = "application/vnd.gitlab-workhorse+json"
# Rails' non-authorizing answers are passed back, but only this much of them (as GitLab does).
FAILED_RESPONSE_LIMIT = 32768

_OURS = {"gitlab-workhorse", API_REQUEST_HEADER.lower(), "x-sendfile-type", "gitlab-workhorse-multipart-fields"}


def rails_headers(req: Request, drop: Iterable[str] = ()) -> Headers:
    """What every proxied request carries: the client's headers (minus ``drop``, and minus the
    internal ones a client may not set) plus ``Gitlab-Workhorse`` and ``X-Sendfile-Type``. Unsigned:
    GitLab's plain proxy does not sign, so Rails refuses an internal route reached through it."""
    headers = without(req.headers, {*_OURS, "x-request-id", *drop})
    return [
        *headers,
        ("Gitlab-Workhorse", __version__),
        ("X-Sendfile-Type", "X-Sendfile"),
        ("X-Request-Id", req.request_id),
    ]


def signed_rails_headers(state: State, req: Request, drop: Iterable[str] = ()) -> Headers:
    """``rails_headers`` plus the ``Gitlab-Workhorse-Api-Request`` JWT (``secret.NewRoundTripper``):
    only for the requests Workhorse makes itself on a route it intercepts (an upload's
    ``/authorize`` call and its rewritten form), never for a request it merely passes on."""
    return [*rails_headers(req, drop), (API_REQUEST_HEADER, api_request_token(state.key))]


def rails_request(state: State, method: str, url: str, headers: Headers, content: Any = None) -> httpx.Request:
    """A request to Rails with the client's header bytes as they came (uvicorn decodes them as
    latin-1, so they go back as latin-1): Go's ``net/http`` passes a non-ASCII value on too, and
    Rails answers it (an unknown token), where httpx's default ASCII would raise."""
    return state.rails.build_request(method, url, headers=httpx.Headers(headers, encoding="latin-1"), content=content)


@dataclass
class Refused:
    """A Rails answer that is not an authorization; it goes back to the client as it is."""

    status: int
    headers: Headers
    body: bytes


async def preauthorize(state: State, req: Request) -> dict[str, Any] | Refused:
    """``POST <path>/authorize?<query>``: the authorize JSON, or Rails' refusal to relay."""
    url = f"{req.raw_path or req.path}/authorize" + (f"?{req.query}" if req.query else "")
    request = rails_request(state, req.method, url, signed_rails_headers(state, req, BODY_HEADERS))
    response = await state.rails.send(request, stream=True)
    try:
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if response.status_code != 200 or content_type != RESPONSE_CONTENT_TYPE:
            body = b""
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= FAILED_RESPONSE_LIMIT:
                    body = body[:FAILED_RESPONSE_LIMIT]
                    break
            headers = without(response.headers.multi_items(), {"content-length"})
            return Refused(response.status_code, headers, body)
        return json.loads(await response.aread())
    finally:
        await response.aclose()

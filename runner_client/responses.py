"""The status text gitlab-runner logs for an answer (network/client.go): ``res.Status`` for a
2xx, ``"<METHOD> <url>: <code> <text> (<message>)"`` for a JSON ``{"message": ...}`` error,
``"<code> <text> (<Code>: <Message>)"`` for an object-storage XML ``<Error>``."""

from __future__ import annotations

import json
from http import HTTPStatus
from xml.etree import ElementTree

import httpx

from runner_client.profile import status_line

MAX_ERROR_BODY = 1 << 20


class ArtifactsError(Exception):
    """A FATAL end: the message gitlab-runner prints after ``FATAL:`` and exit code 1."""

    exit_code = 1


def status_text(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def clean_url(url: httpx.URL) -> str:
    return str(url.copy_with(query=None, fragment=None, username=None, password=None)).rstrip("?")


def _mime(res: httpx.Response) -> str:
    return res.headers.get("Content-Type", "").split(";")[0].strip().lower()


async def _body(res: httpx.Response) -> bytes:
    out = bytearray()
    async for chunk in res.aiter_bytes():
        out += chunk
        if len(out) >= MAX_ERROR_BODY:
            break
    return bytes(out)


def _json_message(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # {"field": ["problem", ...]} -> "field: problem; other"
        return ", ".join(f"{k}: {'; '.join(str(v) for v in vs)}" for k, vs in value.items() if isinstance(vs, list))
    return ""


def _json_error(res: httpx.Response, body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    code_text = f"{res.status_code} {status_text(res.status_code)}"
    text = f"{res.request.method} {clean_url(res.request.url)}: {code_text}"
    message = _json_message(payload.get("message"))
    return text if message == code_text else f"{text} ({message})"


def _xml_error(res: httpx.Response, body: bytes) -> str:
    code_text = f"{res.status_code} {status_text(res.status_code)}"
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        return f"{status_line(res)} ({_mime(res)} decode error: {exc})"
    if root.tag != "Error":
        return f"{status_line(res)} ({_mime(res)} decode error: expected element type <Error> but have <{root.tag}>)"
    code = root.findtext("Code") or ""
    if not code:
        return code_text
    return f"{code_text} ({code}: {root.findtext('Message') or ''})"


async def message_from_json(res: httpx.Response) -> str:
    """getMessageFromJSONResponse."""
    if 200 <= res.status_code <= 299 or _mime(res) != "application/json":
        return status_line(res)
    return _json_error(res, await _body(res)) or status_line(res)


async def message_from_json_or_xml(res: httpx.Response) -> str:
    """getMessageFromJSONOrXMLResponse: a 403 from object storage explains itself in XML."""
    mime = _mime(res)
    if 200 <= res.status_code <= 299 or mime not in ("application/json", "application/xml", "text/xml"):
        return status_line(res)
    body = await _body(res)
    if mime == "application/json":
        message = _json_error(res, body)
        return message if message is not None else f"{status_line(res)} ({mime} decode error)"
    return _xml_error(res, body)

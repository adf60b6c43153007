"""A streaming view of a multipart/form-data body, on python-multipart's push parser.

Events come out as the body comes in: part headers, data slices, part end. Nothing is
buffered beyond the ASGI message being parsed.
"""

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser

# The parser logs its own complaints; we report them as request errors instead.
_parser_log = logging.getLogger("python_multipart")
_parser_log.addHandler(logging.NullHandler())
_parser_log.propagate = False


class NotMultipart(Exception):
    """Not multipart/form-data: the request goes to Rails untouched."""


class MissingBoundary(Exception):
    """multipart/form-data without a boundary (400)."""


class UnexpectedEOF(Exception):
    """The body ended (or never matched the boundary) outside a file's data (400)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("unexpected EOF when reading multipart data" + (f": {detail}" if detail else ""))


class UnusableBoundary(Exception):
    """A boundary the parser refuses (python-multipart: over 256 bytes; RFC 2046 allows 70).
    Go's mime/multipart sets no limit; no client sends one that long, so it is refused as a
    multipart Workhorse cannot read: 400."""


class TruncatedFile(Exception):
    """The body ended inside a file's data (Go: persisting multipart file: unexpected EOF, 500)."""


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data (or mixed) content type."""
    message = Message()
    message["content-type"] = content_type or ""
    if message.get_content_type() not in ("multipart/form-data", "multipart/mixed"):
        raise NotMultipart(content_type)
    boundary = message.get_param("boundary")
    if not boundary or not isinstance(boundary, str):
        raise MissingBoundary("no multipart boundary param in Content-Type")
    return boundary.encode("latin-1")


@dataclass
class PartStart:
    name: str
    filename: str
    headers: list[tuple[str, str]]


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def _disposition(headers: list[tuple[str, str]]) -> tuple[str, str]:
    message = Message()
    for name, value in headers:
        if name.lower() == "content-disposition":
            message["content-disposition"] = value
    return message.get_param("name", "", "content-disposition"), message.get_filename("")


async def events(body: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[Event]:
    """Parse ``body`` incrementally; raise UnexpectedEOF/TruncatedFile if it stops short,
    UnusableBoundary before reading anything if the parser cannot take the boundary."""
    queue: deque[Event] = deque()
    headers: list[tuple[str, str]] = []
    field_name, field_value = bytearray(), bytearray()
    state = {"ended": False, "in_file": False}

    def on_header_end() -> None:
        headers.append((field_name.decode("latin-1"), field_value.decode("utf-8", "replace")))
        field_name.clear()
        field_value.clear()

    def on_headers_finished() -> None:
        name, filename = _disposition(headers)
        queue.append(PartStart(name, filename, list(headers)))
        state["in_file"] = bool(filename)
        headers.clear()

    def on_part_end() -> None:
        queue.append(PartEnd())
        state["in_file"] = False

    callbacks = {
        "on_header_field": lambda d, s, e: field_name.extend(d[s:e]),
        "on_header_value": lambda d, s, e: field_value.extend(d[s:e]),
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": lambda d, s, e: queue.append(PartData(bytes(d[s:e]))),
        "on_part_end": on_part_end,
        "on_end": lambda: state.update(ended=True),
    }
    try:
        parser = MultipartParser(boundary, callbacks)
    except FormParserError as exc:
        raise UnusableBoundary(str(exc)) from exc
    async for chunk in body:
        if state["ended"]:
            continue  # the epilogue is read and ignored
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise UnexpectedEOF(str(exc)) from exc
        while queue:
            yield queue.popleft()
    if not state["ended"]:
        if state["in_file"]:
            raise TruncatedFile("unexpected EOF")
        raise UnexpectedEOF()

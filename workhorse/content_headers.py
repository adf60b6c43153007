"""Content-Type and Content-Disposition for bytes Workhorse serves on its own.

- ``type_by_extension``: Go's ``mime.TypeByExtension`` as GitLab's artifacts-entry uses it:
  the system's ``mime.types`` first (Python's ``mimetypes`` reads the same files Go does),
  then Go's small built-in table; ``text/*`` gains ``; charset=utf-8``.
- ``safe_content_headers``: ``internal/headers/content_headers.go``, used when Rails answers
  ``Gitlab-Workhorse-Detect-Content-Type: true``: the type is sniffed from the first bytes
  (WHATWG sniffing, as Go's ``http.DetectContentType``), any text becomes ``text/plain``,
  SVG is never inline, and an ``attachment`` disposition stays an attachment.
"""

import mimetypes
import re

from xtractmime import extract_mime

DETECT_HEADER = "gitlab-workhorse-detect-content-type"
MAX_DETECT_SIZE = 4096  # headers.MaxDetectSize: how much Workhorse buffers before deciding
SNIFF_LENGTH = 512  # what http.DetectContentType looks at
OCTET_STREAM = "application/octet-stream"
TEXT_PLAIN = "text/plain; charset=utf-8"

GO_BUILTIN_TYPES = {
    ".avif": "image/avif",
    ".css": "text/css; charset=utf-8",
    ".gif": "image/gif",
    ".htm": "text/html; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".mjs": "text/javascript; charset=utf-8",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".xml": "text/xml; charset=utf-8",
}

_HTML_COMMENT = re.compile(rb"(?i)<!--([\s\S]*?)-->")
_SVG = re.compile(rb"(?i)^\s*(?:<\?xml[^>]*>\s*)?(?:<!doctype svg[^>]*>\s*)?<svg[^>]*>")
_INLINE_TYPES = re.compile(r"^(image/|text/|video/)|application/pdf")
_ATTACHMENT = re.compile(r"^attachment")
_INLINE = re.compile(r"^inline")

mimetypes.init()


def type_by_extension(filename: str) -> str:
    """The Content-Type of an artifacts entry, by its extension (``detectFileContentType``)."""
    dot = filename.rfind(".")
    extension = filename[dot:] if dot > filename.rfind("/") else ""
    if not extension:
        return OCTET_STREAM
    found = mimetypes.types_map.get(extension) or mimetypes.types_map.get(extension.lower())
    if found is None:
        return GO_BUILTIN_TYPES.get(extension.lower(), OCTET_STREAM)
    return f"{found}; charset=utf-8" if found.startswith("text/") else found


def _is_svg(data: bytes) -> bool:
    """``svg.Is``: text (no NUL) that opens with an ``<svg`` element, comments aside."""
    return b"\0" not in data and _SVG.match(_HTML_COMMENT.sub(b"", data)) is not None


def safe_content_type(data: bytes) -> str:
    if _is_svg(data):
        return "image/svg+xml"
    detected = (extract_mime(data[:SNIFF_LENGTH]) or b"").decode("latin-1") or OCTET_STREAM
    return TEXT_PLAIN if detected.startswith("text/") else detected


def safe_content_disposition(content_type: str, disposition: str) -> str:
    if _ATTACHMENT.match(disposition):
        return disposition
    if content_type != "image/svg+xml" and _INLINE_TYPES.search(content_type):
        return _INLINE.sub("inline", disposition) if disposition else "inline"
    return _INLINE.sub("attachment", disposition) if disposition else "attachment"


def safe_content_headers(data: bytes, disposition: str) -> tuple[str, str]:
    """``SafeContentHeaders(data, contentDisposition)`` -> (Content-Type, Content-Disposition)."""
    content_type = safe_content_type(data)
    return content_type, safe_content_disposition(content_type, disposition)

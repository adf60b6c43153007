"""S3's XML error document, shared by the embedded store's gate and the object-storage door."""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

SIGNATURE_DOES_NOT_MATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)


def error_document(code: str, message: str, details: Mapping[str, str] | None = None) -> bytes:
    """``<Error><Code/><Message/>...</Error>``: clients read ``Code`` and ``Message``."""
    extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in (details or {}).items())
    error = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}</Error>"
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{error}'.encode()

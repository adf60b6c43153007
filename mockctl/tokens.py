"""Tokens never appear whole in the journal: gitlab-runner's ShortenToken rule (v18.2+)."""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET_HEADERS = {
    "job-token",
    "private-token",
    "runner-token",
    "authorization",
    "gitlab-workhorse-api-request",
    "gitlab-workhorse-multipart-fields",
}
_TOKEN_PREFIX = re.compile(r"^(glrt-(t[123]_)?|t[123]_|glrtr-|glcbt-|glpat-|GR[0-9A-F]{7})")


def shorten_token(token: str) -> str:
    """Drop a known prefix, keep 9 characters; short tokens stay whole."""
    return token if len(token) < 10 else _TOKEN_PREFIX.sub("", token)[:9]


def masked_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, credentials shortened (``Authorization`` keeps its scheme)."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {shorten_token(rest)}" if rest and lower == "authorization" else shorten_token(value)
        kept[lower] = value
    return kept

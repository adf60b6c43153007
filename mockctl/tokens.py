"""Tokens never appear whole in the journal, a flow diagram or Rails' access log.

Headers keep gitlab-runner's ShortenToken (v18.2+) of a token, so a reader can tell tokens
apart; query strings get GitLab Rails' ``filter_parameters`` rule (values ``[FILTERED]``),
as GitLab's own logs show a URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

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


# GitLab's config/application.rb: ``filter_parameters += [/token$/, /password/, /secret/]``
# plus ``key`` (and names no runner API takes). Case-insensitive here: a test tool leaks less.
_FILTERED_PARAM = re.compile(r"token$|password|secret|^key$", re.I)
_QUERY_PAIR = re.compile(r"(?:^|(?<=&))([^&=]+)=([^&]*)")


def masked_query(query: str) -> str:
    """The query string with secret values as ``[FILTERED]``, every other byte kept."""
    return _QUERY_PAIR.sub(
        lambda m: f"{m[1]}=[FILTERED]" if _FILTERED_PARAM.search(unquote_plus(m[1])) else m[0], query
    )


def masked_target(target: str) -> str:
    """A request target (``path?query``) with its query masked."""
    path, sep, query = target.partition("?")
    return path + sep + masked_query(query)


class AccessLogFilter(logging.Filter):
    """Masks the query of uvicorn's access line (``%s - "%s %s HTTP/%s" %d``, the target third)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], masked_target(args[2]), *args[3:])
        return True


def mask_access_log() -> None:
    """Install the filter on ``uvicorn.access`` once (Rails' access log at ``--log-level info``)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())

"""Offset pagination as GitLab's API sends it (``PaginationParams``,
``Gitlab::Pagination::OffsetPagination``, ``OffsetHeaderBuilder``).

``X-Per-Page``, ``X-Page``, ``X-Next-Page`` and ``X-Prev-Page`` (empty when there is none) and
a ``Link`` header always; ``X-Total``, ``X-Total-Pages`` and ``rel="last"`` only when the
endpoint counts. Link URLs repeat every request parameter, route parameters included,
sorted and escaped the way Rails' ``Hash#to_query`` does. python-gitlab follows
``rel="next"`` for ``get_all=True`` and iterators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus

from starlette.requests import Request

from app.api.params import integer
from app.api.runner_jobs import server_url

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100  # Kaminari's max_per_page in GitLab


@dataclass(frozen=True)
class PageParams:
    page: int
    per_page: int


def page_params(params: Mapping[str, str]) -> PageParams:
    """Grape ``Integer`` coercion, then Kaminari's clamping."""
    page = integer(params, "page") or 1
    per_page = integer(params, "per_page") or DEFAULT_PER_PAGE
    return PageParams(max(page, 1), DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE))


def to_query(params: Mapping[str, object]) -> str:
    """``Hash#to_query``: ``key=value`` pairs (arrays as ``key[]=v``), CGI-escaped, sorted."""
    pairs = []
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        name = f"{key}[]" if isinstance(value, list) else key
        for item in values:
            text = str(item).lower() if isinstance(item, bool) else str(item)
            pairs.append(f"{quote_plus(name, safe='~')}={quote_plus(text, safe='~')}")
    return "&".join(sorted(pairs))


def _base_url(request: Request) -> str:
    """The request's own URL (raw path, so ``%2F`` stays encoded), on the instance's host."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path
    return f"{server_url(request).url}{path}"


def pagination_headers(
    request: Request,
    params: Mapping[str, object],
    page: PageParams,
    *,
    has_next: bool,
    total: int | None,
) -> dict[str, str]:
    """``params`` are Grape's: the request's, the route's and the declared defaults."""
    next_page = page.page + 1 if has_next else None
    prev_page = page.page - 1 if page.page > 1 else None
    total_pages = max(-(-total // page.per_page), 1) if total is not None else None
    base = _base_url(request)

    def href(number: int) -> str:
        return f"{base}?{to_query({**params, 'page': number, 'per_page': page.per_page})}"

    links = []
    if prev_page:
        links.append(f'<{href(prev_page)}>; rel="prev"')
    if next_page:
        links.append(f'<{href(next_page)}>; rel="next"')
    links.append(f'<{href(1)}>; rel="first"')
    if total_pages is not None:
        links.append(f'<{href(total_pages)}>; rel="last"')
    headers = {
        "X-Per-Page": str(page.per_page),
        "X-Page": str(page.page),
        "X-Next-Page": str(next_page or ""),
        "X-Prev-Page": str(prev_page or ""),
        "Link": ", ".join(links),
    }
    if total is not None:
        headers["X-Total"] = str(total)
        headers["X-Total-Pages"] = str(total_pages)
    return headers

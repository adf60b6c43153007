"""Workhorse's part of mockcoord's request journal, kept in the Workhorse process.

Rails keeps the journal of what reaches it; Workhorse's instrument (``mockctl.workhorse``)
keeps this one (requests Workhorse served, object-storage calls it made) and merges it in on
the way out of the control plane: ``GET /-/mock/requests`` answers gain Workhorse's entries,
``DELETE /-/mock/requests`` and ``POST /-/mock/reset`` clear them, and
``GET /-/mock/flows/<id>`` hands Rails this request's entries in a header so the diagram
shows all three components.
"""

import base64
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from mockctl.tokens import masked_headers, masked_query

JOURNAL_HEADER = "Gitlab-Workhorse-Mock-Journal"
REQUESTS_PATH = "/-/mock/requests"
FLOWS_PREFIX = "/-/mock/flows/"
# Control-plane calls that empty Rails' journal; when they succeed, Workhorse's part goes too.
CLEARING = (("DELETE", REQUESTS_PATH), ("POST", "/-/mock/reset"))
UNJOURNALED = (REQUESTS_PATH, "/-/mock/flows", "/-/health", "/-/readiness")
_JOB_PATH = re.compile(r"^/api/v4/jobs/(\d+)(/|$)")


class Journal:
    def __init__(self, limit: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._ids = itertools.count(1)

    def record(
        self,
        component: str,
        method: str,
        path: str,
        *,
        correlation_id: str,
        started: float,
        status: int,
        query: str = "",
        headers: Iterable[tuple[str, str]] = (),
        bytes_in: int = 0,
        bytes_out: int = 0,
        via: str = "",
        note: str = "",
    ) -> None:
        if self.entries.maxlen == 0 or path.startswith(UNJOURNALED):
            return
        job = _JOB_PATH.match(path)
        self.entries.append(
            {
                "component": component,
                "method": method,
                "path": path,
                "query": masked_query(query),
                "correlation_id": correlation_id,
                "headers": masked_headers(headers),
                "status": status,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="microseconds"),
                "duration_ms": round((time.time() - started) * 1000, 3),
                "job_id": int(job.group(1)) if job else None,
                "note": note,
                "via": via,
                "steps": [],
                "id": f"w{next(self._ids)}",
            }
        )

    def clear(self) -> None:
        self.entries.clear()

    def matching(self, query: str) -> list[dict[str, Any]]:
        """The same filters Rails applies (``component``, ``method``, ``path`` regex, ``status``,
        ``correlation_id``, ``job_id``); Rails has already refused malformed values."""
        q = {k: v[0] for k, v in parse_qs(query).items()}
        checks = {
            "component": lambda e, v: e["component"] == v,
            "method": lambda e, v: e["method"] == v.upper(),
            "path": lambda e, v: re.search(v, e["path"]) is not None,
            "status": lambda e, v: str(e["status"]) == v,
            "correlation_id": lambda e, v: e["correlation_id"] == v,
            "job_id": lambda e, v: str(e["job_id"]) == v,
        }
        return [e for e in self.entries if all(check(e, q[k]) for k, check in checks.items() if q.get(k))]

    def merge_into(self, body: bytes, query: str) -> bytes:
        """Rails' ``{"count", "requests"}`` answer with Workhorse's matching entries added."""
        answer = json.loads(body)
        merged = sorted(answer["requests"] + self.matching(query), key=lambda e: e["started_at"])
        limit = int((parse_qs(query).get("limit") or ["0"])[0] or 0)
        count = answer["count"] + len(self.matching(query))
        return json.dumps({"count": count, "requests": merged[-limit:] if limit > 0 else merged}).encode()

    def flow_header(self, correlation_id: str) -> str:
        entries = [e for e in self.entries if e["correlation_id"] == correlation_id]
        return base64.urlsafe_b64encode(json.dumps(entries).encode()).decode()

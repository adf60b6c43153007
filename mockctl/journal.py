"""The request journal: what passed through Rails and object storage, newest last.

Bounded in memory (``MOCKCOORD_JOURNAL_LIMIT``); tokens are shortened (headers) or filtered
(query strings) by ``mockctl.tokens`` before they are kept. Workhorse keeps its own entries
and merges them in when ``GET /-/mock/requests`` passes through it, so the front door shows
all three components.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from app import correlation

WORKHORSE_JOURNAL_HEADER = "Gitlab-Workhorse-Mock-Journal"
STORAGE_STEP = "object storage: "  # a step that is a call Rails made to object storage


_JOB_PATH = re.compile(r"^/api/v4/jobs/(\d+)(/|$)")


@dataclass
class JournalEntry:
    component: str
    method: str
    path: str
    query: str = ""
    correlation_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    job_id: int | None = None
    note: str = ""
    via: str = ""  # for storage calls: which component made them (rails or workhorse)
    steps: list[str] = field(default_factory=list)
    id: int = 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = datetime.fromtimestamp(self.started_at, UTC).isoformat(timespec="microseconds")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        """Entries Workhorse hands over (same keys; ``started_at`` in ISO 8601)."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(values.get("started_at"), str):
            values["started_at"] = datetime.fromisoformat(values["started_at"]).timestamp()
        return cls(**values)


def job_id_of(path: str) -> int | None:
    match = _JOB_PATH.match(path)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class JournalFilter:
    """``GET /-/mock/requests`` filters; Workhorse applies the same ones to its entries."""

    component: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    correlation_id: str | None = None
    job_id: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> JournalFilter:
        def number(name: str) -> int | None:
            value = query.get(name)
            if value in (None, ""):
                return None
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None

        path = query.get("path") or None
        if path:
            try:
                re.compile(path)
            except re.error as exc:
                raise ValueError(f"path is not a valid regular expression: {exc}") from None
        return cls(
            component=query.get("component") or None,
            method=(query.get("method") or "").upper() or None,
            path=path,
            status=number("status"),
            correlation_id=query.get("correlation_id") or None,
            job_id=number("job_id"),
        )

    def matches(self, entry: JournalEntry) -> bool:
        return (
            (self.component is None or entry.component == self.component)
            and (self.method is None or entry.method == self.method)
            and (self.path is None or re.search(self.path, entry.path) is not None)
            and (self.status is None or entry.status == self.status)
            and (self.correlation_id is None or entry.correlation_id == self.correlation_id)
            and (self.job_id is None or entry.job_id == self.job_id)
        )


class Journal:
    def __init__(self, limit: int) -> None:
        self.entries: deque[JournalEntry] = deque(maxlen=limit)
        self._ids = itertools.count(1)

    def record(self, entry: JournalEntry) -> None:
        if self.entries.maxlen == 0:
            return
        entry.id = next(self._ids)
        entry.correlation_id = entry.correlation_id or correlation.current.get()
        entry.job_id = entry.job_id if entry.job_id is not None else job_id_of(entry.path)
        self.entries.append(entry)

    def query(self, wanted: JournalFilter) -> list[JournalEntry]:
        return [e for e in self.entries if wanted.matches(e)]

    def clear(self) -> None:
        self.entries.clear()


def workhorse_entries(header: str | None) -> list[JournalEntry]:
    """Workhorse's own entries for one flow, handed over as urlsafe base64 JSON."""
    if not header:
        return []
    try:
        return [JournalEntry.from_json(item) for item in json.loads(base64.urlsafe_b64decode(header))]
    except (ValueError, TypeError):
        return []

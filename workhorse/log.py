"""Workhorse-style structured logs: one JSON object per line, request fields from context."""

import contextvars
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

# Fields of the request being served (correlation_id, method, uri), added to every line.
request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("request_fields", default=None)

# Query parameters whose values never reach a log (labkit's mask.URL idea).
_SENSITIVE = re.compile(
    r"token|password|secret|key|signature|credential|authorization|jwt|otp|sentry_dsn|X-Amz-Security", re.I
)


def mask_uri(path: str, query: str) -> str:
    """Path plus query with sensitive values replaced by ``[FILTERED]``."""
    if not query:
        return path
    pairs = [(k, "[FILTERED]" if _SENSITIVE.search(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{urlencode(pairs, safe='[]')}"


class JsonLog:
    """Line-oriented JSON logger; one instance per app, writing to a file or stderr."""

    def __init__(self, path: Path | None) -> None:
        self._out: TextIO = path.open("a", buffering=1) if path else sys.stderr

    def write(self, level: str, msg: str, **fields: Any) -> None:
        record = {**(request_fields.get() or {}), **fields, "level": level, "msg": msg}
        record["time"] = datetime.now().astimezone().isoformat(timespec="seconds")
        self._out.write(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n")

    def info(self, msg: str, **fields: Any) -> None:
        self.write("info", msg, **fields)

    def error(self, msg: str, error: BaseException | str, **fields: Any) -> None:
        self.write("error", msg, error=str(error), **fields)

    def close(self) -> None:
        if self._out is not sys.stderr:
            self._out.close()

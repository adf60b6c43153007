"""The report of a Locust run made by hand (a master here, workers on other machines), from the
records its master wrote (``--mockcoord-records``): the same figures and page as a
``mockcoord loadtest`` run, without the process samples (those processes were not ours to watch)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mockctl.loadtest.figures import mode_figures
from mockctl.loadtest.options import OptionError


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise OptionError(f"--from-records: cannot read {path} ({exc.strerror or exc})") from None
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise OptionError(f"--from-records: {path}:{number} is not a record (one JSON object a line)") from None
    return lines


def modes_from_records(paths: list[Path]) -> tuple[dict[str, dict[str, Any]], str]:
    """Each mode's figures, and when the first request began. A request's mode is its name's first
    word (``proxy download``: ``proxy``, as ``USER_CLASSES`` names them); a file's user counts go to
    each of its modes."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        lines = _lines(path)
        by_mode: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            if "name" in line:
                by_mode.setdefault(line["name"].split()[0], []).append(line)
        users = [line for line in lines if "users" in line]
        for mode, requests in by_mode.items():
            grouped.setdefault(mode, []).extend([*users, *requests])
    if not grouped:
        raise OptionError(f"--from-records: no request is recorded in {', '.join(map(str, paths))}")
    first = min(line["start"] for lines in grouped.values() for line in lines if "name" in line)
    modes = {mode: mode_figures(lines) | {"processes": {}} for mode, lines in grouped.items()}
    return modes, datetime.fromtimestamp(first, UTC).isoformat(timespec="seconds")

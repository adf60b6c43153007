"""The run's options, checked before anything starts: a bad one is one line and exit code 2."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNITS = {"": 1, "B": 1, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "KB": 10**3, "MB": 10**6, "GB": 10**9}
MODES = ("direct", "proxy", "upload", "compare")


class OptionError(ValueError):
    """A bad option, named in its message."""


def parse_size(text: str) -> int:
    """``10MiB``, ``1GiB``, ``512KiB``, ``1000000``: bytes (IEC and SI units, case-insensitive)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in UNITS:
        raise OptionError(f"--artifact-size {text!r}: give a number with a unit, e.g. 10MiB or 1GiB")
    size = int(float(match.group(1)) * UNITS[unit])
    if size <= 0:
        raise OptionError(f"--artifact-size {text!r}: must be more than 0 bytes")
    return size


def parse_fault(text: str | None) -> dict[str, Any] | None:
    """A control-plane fault rule (as ``POST /-/mock/faults`` takes it), as JSON or a file of it."""
    if not text:
        return None
    path = Path(text)
    try:
        source = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
        rule = json.loads(source)
    except (OSError, json.JSONDecodeError) as exc:
        raise OptionError(f"--fault {text!r}: not a JSON object or a file of one ({exc})") from None
    if not isinstance(rule, dict):
        raise OptionError(f"--fault {text!r}: a fault rule is a JSON object")
    return rule


@dataclass(frozen=True)
class LoadOptions:
    mode: str
    users: int
    spawn_rate: float
    duration: float
    artifact_size: int
    objects: int
    locust_workers: int
    out: Path
    fault: dict[str, Any] | None = None
    url: str | None = None
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OptionError(f"--mode {self.mode!r}: one of {', '.join(MODES)}")
        for name in ("users", "objects"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name} must be at least 1")
        if self.spawn_rate <= 0 or self.duration <= 0:
            raise OptionError("--spawn-rate and --duration must be more than 0")
        if self.locust_workers < 0:
            raise OptionError("--locust-workers must be 0 (one process) or more")
        if self.url is not None and self.admin_token is None:
            raise OptionError("--url needs --admin-token (the coordinator's admin PRIVATE-TOKEN)")

    @property
    def modes(self) -> list[str]:
        return ["direct", "proxy"] if self.mode == "compare" else [self.mode]


def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``1h`` or plain seconds, as Locust's ``--run-time`` takes them."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise OptionError(f"--duration {text!r}: give seconds, or a number with s, m or h (e.g. 30s, 2m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]

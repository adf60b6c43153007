"""The one clock every time-dependent rule reads (expiry, URL lifetime, token expiry).

Times are timezone-aware UTC; SQLModel's UTCDateTime keeps them so in SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Moves the clock on; ``OverflowError`` (and the clock left as it was) past year 9999."""
    global _offset
    if datetime.max.replace(tzinfo=UTC) - now() < delta:
        raise OverflowError("date value out of range")
    _offset += delta


def set_to(when: datetime) -> None:
    global _offset
    _offset = when - datetime.now(UTC)


def offset() -> timedelta:
    return _offset


def set_offset(delta: timedelta) -> None:
    """The offset another process chose (the instrument shares it between processes)."""
    global _offset
    _offset = delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def iso(value: datetime | None) -> str | None:
    """GitLab's API renders times as ISO 8601 with milliseconds and ``Z``."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

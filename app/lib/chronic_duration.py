"""``expire_in`` as GitLab reads it: 'never', or a ChronicDuration string.

GitLab sets ``ChronicDuration.raise_exceptions = true`` and a 30-day month; a year is
365.25 days. Unparsable input makes GitLab answer 500; mockcoord answers 400 naming
the value (documented in docs/architecture.md).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

MINUTE = 60
HOUR = 3600
DAY = 86400
UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), MINUTE),
    (("h", "hr", "hrs", "hour", "hours"), HOUR),
    (("d", "day", "days"), DAY),
    (("w", "wk", "wks", "week", "weeks"), 7 * DAY),
    (("mo", "mos", "mon", "mons", "month", "months"), 30 * DAY),
    (("y", "yr", "yrs", "year", "years"), 31_557_600),
):
    for _name in _names:
        UNITS[_name] = _seconds

_TOKEN = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)?")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2})(?:\.(\d+))?$")
_FILLER = re.compile(r"\b(and|plus|with)\b|[,\s]+")


class DurationParseError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in ``text`` ('2 hrs 20 min', '3 mos', '1h30m', '90', '1:30:00')."""
    value = text.strip().lower()
    if not value:
        raise DurationParseError("empty duration")
    clock = _CLOCK.match(value)
    if clock:
        hours, minutes, seconds, fraction = clock.groups()
        return int(hours or 0) * HOUR + int(minutes) * MINUTE + int(seconds) + float(f"0.{fraction or 0}")
    total = 0.0
    pos = 0
    matched = False
    for match in _TOKEN.finditer(value):
        gap = value[pos : match.start()]
        if _FILLER.sub("", gap):
            raise DurationParseError(f"unexpected {gap.strip()!r}")
        number, unit = match.groups()
        if unit is None:
            seconds = 1.0
        elif unit in UNITS:
            seconds = UNITS[unit]
        else:
            raise DurationParseError(f"unknown unit {unit!r}")
        total += float(number) * seconds
        pos = match.end()
        matched = True
    if not matched or _FILLER.sub("", value[pos:]):
        raise DurationParseError(f"cannot read {text!r} as a duration")
    return total


def expire_at(expire_in: str | None, default: str, now: datetime) -> datetime | None:
    """``expire_in || default_artifacts_expire_in``; 'never' (any case) means no expiry.

    GitLab keeps any time PostgreSQL's timestamp holds (to year 294276); a Python datetime
    ends with year 9999, so a later expiry is refused as a duration mockcoord cannot read."""
    value = expire_in if expire_in else default
    if value.strip().lower() == "never":
        return None
    seconds = parse_duration(value)
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        raise DurationParseError(f"the expiry would fall after the year {datetime.max.year}") from None

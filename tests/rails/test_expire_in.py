"""expire_in as GitLab reads it (ChronicDuration with a 30-day month)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.lib.chronic_duration import DurationParseError, expire_at, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1 day", 86400),
        ("3 mos", 90 * 86400),
        ("2 hrs 20 min", 8400),
        ("90", 90),
        ("1h30m", 5400),
        ("1.5 hours", 5400),
        ("2 days and 3 hours", 183600),
        ("1:30:00", 5400),
        ("1 year", 31557600),
        ("1 week", 604800),
        ("30 days", 2592000),
        ("3 weeks, 2 days", 23 * 86400),
        ("10 SECONDS", 10),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1 fortnight", "abc 1 day", "1 day tomorrow"])
def test_unparsable(text: str) -> None:
    with pytest.raises(DurationParseError):
        parse_duration(text)


def test_never_and_default() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert expire_at("never", "30 days", now) is None
    assert expire_at("NEVER", "30 days", now) is None
    assert expire_at(None, "30 days", now) == now + timedelta(days=30)
    assert expire_at("", "never", now) is None
    assert expire_at("2 hrs", "30 days", now) == now + timedelta(hours=2)


@pytest.mark.parametrize("text", ["8000 years", "99999999999 years", "1" + "0" * 400 + " years"])
def test_an_expiry_past_what_a_datetime_holds_is_refused(text: str) -> None:
    with pytest.raises(DurationParseError, match="after the year 9999"):
        expire_at(text, "30 days", datetime(2026, 1, 1, tzinfo=UTC))
    assert expire_at("7000 years", "30 days", datetime(2026, 1, 1, tzinfo=UTC)).year == 9026  # type: ignore[union-attr]

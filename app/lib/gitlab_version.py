"""The GitLab release mockcoord imitates where housekeeping changed between releases.

A process-wide choice, like the clock: set from ``Settings.gitlab_version`` when a process
starts (``configure``), switchable at run time by the instrument. ``newest`` is the newest
source the reference was read from.
"""

from __future__ import annotations

Version = tuple[int, int]

NEWEST: Version = (99, 0)  # compares above every release

_current: Version = NEWEST


def parse(value: str) -> Version:
    """``"15.2"`` -> ``(15, 2)``; ``"newest"`` -> ``NEWEST``; ``ValueError`` otherwise."""
    if value == "newest":
        return NEWEST
    major, _, minor = value.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"not a GitLab release (MAJOR.MINOR or newest): {value!r}")
    return int(major), int(minor)


def render(version: Version) -> str:
    return "newest" if version == NEWEST else f"{version[0]}.{version[1]}"


def configure(value: str) -> None:
    global _current
    _current = parse(value)


def current() -> Version:
    return _current


def at_least(major: int, minor: int) -> bool:
    return _current >= (major, minor)


def between(first: Version, last: Version) -> bool:
    """Both ends included: ``between((16, 1), (16, 2))`` is the ``@final`` bug's window."""
    return first <= _current <= last

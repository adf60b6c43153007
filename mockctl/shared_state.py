"""What the instrument changes at run time and every process must see alike: the mock clock's
offset and the GitLab release imitated.

``app.clock`` and ``app.lib.gitlab_version`` are per process (GitLab's ``Time.current`` and
its release are too). ``mockcoord worker`` runs in other processes, maybe on other machines,
against the same database and bucket, so the control plane writes its changes here and every
other process reads them: a worker before each look at the cron schedule, a Rails process when
it starts and when its own schedule looks. In Redis when ``Settings.redis_url`` is set (hash
``mockcoord:instrument``), in the table ``mockcoord_instrument_state`` otherwise. Nothing set
means real time and the release of ``Settings.gitlab_version``.

The offset is kept, not the time: each process adds it to its own real clock, as the clock
moved in one process does.

Several Rails processes on one machine (``--rails-processes``) learn of a change from a stamp
file in the data directory, rewritten after each change: ``Watch`` looks at it (one ``stat``)
before each request and loads the values again when it moved. A Rails process on another
machine loads them when it starts only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select

from app import clock
from app.config import Settings
from app.lib import gitlab_version
from app.lib.exclusive_lease import redis_client
from app.state import AppState
from mockctl import file_stamp

REDIS_KEY = "mockcoord:instrument"
CLOCK_OFFSET = "clock_offset_us"
GITLAB_VERSION = "gitlab_version"

_locks: dict[int, asyncio.Lock] = {}


class InstrumentStateRow(SQLModel, table=True):
    """The instrument's own table (no GitLab counterpart), one row a key."""

    __tablename__ = "mockcoord_instrument_state"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    value: str


def _lock() -> asyncio.Lock:
    """One per event loop: a change and a read in one process never interleave, so a read that
    began before a change cannot put the old value back after it."""
    loop = asyncio.get_running_loop()
    return _locks.setdefault(id(loop), asyncio.Lock())


def _stamp(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "instrument" / "shared_state.stamp"


async def _write(state: AppState, values: dict[str, str | None]) -> None:
    await _store(state, values)
    file_stamp.replace(_stamp(state.settings), "")  # a new file each time: its identity changes


async def _store(state: AppState, values: dict[str, str | None]) -> None:
    if state.settings.redis_url:
        redis = redis_client(state.settings.redis_url)
        if present := {k: v for k, v in values.items() if v is not None}:
            await redis.hset(REDIS_KEY, mapping=present)
        if absent := [k for k, v in values.items() if v is None]:
            await redis.hdel(REDIS_KEY, *absent)
        return
    dialect = sqlite if state.db.is_sqlite else postgresql
    async with state.db.engine.begin() as conn:
        for key, value in values.items():
            if value is None:
                await conn.execute(delete(InstrumentStateRow).where(col(InstrumentStateRow.key) == key))
                continue
            statement = dialect.insert(InstrumentStateRow).values(key=key, value=value)
            await conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


async def _read(state: AppState) -> dict[str, str]:
    if state.settings.redis_url:
        raw = await redis_client(state.settings.redis_url).hgetall(REDIS_KEY)
        return {k.decode(): v.decode() for k, v in raw.items()}
    async with state.db.engine.connect() as conn:
        rows = await conn.execute(select(InstrumentStateRow.key, InstrumentStateRow.value))
        return {key: value for key, value in rows}


async def change_clock(state: AppState, change: Callable[[], None]) -> None:
    """Run ``change()`` (a move of ``app.clock``) and share the offset it leaves."""
    async with _lock():
        change()
        offset = clock.offset()
        us = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        await _write(state, {CLOCK_OFFSET: str(us) if us else None})


async def change_version(state: AppState, version: str | None) -> None:
    """Switch the release imitated everywhere; ``None`` goes back to the setting."""
    async with _lock():
        gitlab_version.configure(version or state.settings.gitlab_version)
        await _write(state, {GITLAB_VERSION: version})


async def forget(state: AppState) -> None:
    """Real time and the configured release again (a reset). The table is emptied with the
    others; Redis is cleared here."""
    async with _lock():
        clock.reset()
        gitlab_version.configure(state.settings.gitlab_version)
        await _write(state, {CLOCK_OFFSET: None, GITLAB_VERSION: None})


async def load(state: AppState) -> None:
    """Take what the control plane last set, in whichever process that was."""
    async with _lock():
        values = await _read(state)
        clock.set_offset(timedelta(microseconds=int(values.get(CLOCK_OFFSET) or 0)))
        gitlab_version.configure(values.get(GITLAB_VERSION) or state.settings.gitlab_version)


class Watch:
    """One Rails process among several: before a request, what a sibling's control plane set."""

    def __init__(self, settings: Settings) -> None:
        self.path = _stamp(settings)
        self.seen = file_stamp.identity(self.path)

    async def catch_up(self, state: AppState) -> None:
        if (now := file_stamp.identity(self.path)) != self.seen:
            self.seen = now
            await load(state)

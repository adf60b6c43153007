"""``Gitlab::ExclusiveLease``: one holder at a time for a key, for a while.

In Redis when ``Settings.redis_url`` is set (GitLab's key ``gitlab:exclusive_lease:<key>``
holding a UUID, ``SET NX EX``; released only by its holder), in the ``exclusive_leases``
table otherwise. Leases run on the real clock, as Redis TTLs do, whatever the mock clock says:
they guard processes against each other, not simulated time.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from app.db import Database
from app.models import ExclusiveLeaseRow

REDIS_PREFIX = "gitlab:exclusive_lease:"
# Compare-and-delete, as GitLab's lease does: only the UUID that took the lease lets it go.
_CANCEL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class FailedToObtainLockError(Exception):
    """``Gitlab::ExclusiveLeaseHelpers::FailedToObtainLockError``."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Failed to obtain a lock '{key}'")
        self.key = key


@cache
def redis_client(url: str):  # type: ignore[no-untyped-def]
    """One client (and connection pool) a URL a process; imported only when Redis is configured."""
    import redis.asyncio

    return redis.asyncio.from_url(url)


class ExclusiveLease:
    def __init__(self, db: Database, redis_url: str | None, key: str, timeout: timedelta) -> None:
        self.db, self.redis_url, self.key, self.timeout = db, redis_url, key, timeout

    async def try_obtain(self) -> str | None:
        """The lease's UUID when taken, ``None`` when someone else holds it."""
        token = str(uuidlib.uuid4())
        if self.redis_url:
            taken = await redis_client(self.redis_url).set(
                REDIS_PREFIX + self.key, token, nx=True, ex=max(1, int(self.timeout.total_seconds()))
            )
            return token if taken else None
        now = datetime.now(UTC)
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = (
            dialect.insert(ExclusiveLeaseRow)
            .values(key=self.key, uuid=token, expires_at=now + self.timeout)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={"uuid": token, "expires_at": now + self.timeout},
                where=col(ExclusiveLeaseRow.expires_at) <= now,
            )
            .returning(ExclusiveLeaseRow.uuid)
        )
        async with self.db.engine.begin() as conn:
            return token if (await conn.execute(statement)).first() else None

    async def cancel(self, token: str) -> None:
        if self.redis_url:
            await redis_client(self.redis_url).eval(_CANCEL, 1, REDIS_PREFIX + self.key, token)
            return
        async with self.db.engine.begin() as conn:
            await conn.execute(
                delete(ExclusiveLeaseRow).where(ExclusiveLeaseRow.key == self.key, ExclusiveLeaseRow.uuid == token)
            )

    async def exists(self) -> bool:
        if self.redis_url:
            return bool(await redis_client(self.redis_url).exists(REDIS_PREFIX + self.key))
        async with self.db.engine.connect() as conn:
            row = await conn.execute(
                ExclusiveLeaseRow.__table__.select().where(  # type: ignore[attr-defined]
                    ExclusiveLeaseRow.key == self.key, col(ExclusiveLeaseRow.expires_at) > datetime.now(UTC)
                )
            )
            return row.first() is not None


@asynccontextmanager
async def in_lock(lease: ExclusiveLease) -> AsyncIterator[None]:
    """``ExclusiveLeaseHelpers#in_lock`` (retries: 1): the block runs holding the lease, or
    ``FailedToObtainLockError`` and nothing runs."""
    token = await lease.try_obtain()
    if token is None:
        raise FailedToObtainLockError(lease.key)
    try:
        yield
    finally:
        await lease.cancel(token)

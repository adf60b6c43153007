"""``Gitlab::Redis::SharedState`` for the keys rake tasks keep between runs (resume markers).

In Redis when ``Settings.redis_url`` is set (GitLab's key, as is, with its TTL: ``SET key value
EX ttl``), in the ``mockcoord_shared_state`` table otherwise (same key, the TTL as an expiry on
the real clock). Either way a second process, or the same task run again after a kill, reads
what the first wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from app.db import Database
from app.lib.exclusive_lease import redis_client
from app.models import SharedStateKey


class SharedState:
    def __init__(self, db: Database, redis_url: str | None) -> None:
        self.db, self.redis_url = db, redis_url

    async def get(self, key: str) -> str | None:
        if self.redis_url:
            value = await redis_client(self.redis_url).get(key)
            return None if value is None else value.decode()
        now = datetime.now(UTC)
        async with self.db.engine.connect() as conn:
            row = await conn.execute(
                select(SharedStateKey.value).where(
                    SharedStateKey.key == key,
                    or_(col(SharedStateKey.expires_at).is_(None), col(SharedStateKey.expires_at) > now),
                )
            )
            return row.scalar()

    async def set(self, key: str, value: str, ex: int) -> None:
        """``redis.set(key, value, ex: ex)``."""
        if self.redis_url:
            await redis_client(self.redis_url).set(key, value, ex=ex)
            return
        expires = datetime.now(UTC) + timedelta(seconds=ex)
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = (
            dialect.insert(SharedStateKey)
            .values(key=key, value=value, expires_at=expires)
            .on_conflict_do_update(index_elements=["key"], set_={"value": value, "expires_at": expires})
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(statement)

    async def delete(self, key: str) -> None:
        if self.redis_url:
            await redis_client(self.redis_url).delete(key)
            return
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(SharedStateKey).where(SharedStateKey.key == key))

    async def ttl(self, key: str) -> int | None:
        """Seconds left (``TTL``), ``None`` when the key is absent or has no expiry."""
        if self.redis_url:
            left = await redis_client(self.redis_url).ttl(key)
            return left if left >= 0 else None
        async with self.db.engine.connect() as conn:
            expires = (await conn.execute(select(SharedStateKey.expires_at).where(SharedStateKey.key == key))).scalar()
        if expires is None:
            return None
        if expires.tzinfo is None:  # SQLite hands back naive UTC
            expires = expires.replace(tzinfo=UTC)
        left = int((expires - datetime.now(UTC)).total_seconds())
        return left if left >= 0 else None
